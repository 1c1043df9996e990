"""Python's reflection client (grpcio-reflection, which speaks reflection v1alpha) against a
running ledger: it lists the services, builds the intake's message types from the server's
replies alone (no .proto files here), and calls `NextId` with them.

Run by `tests/cli/example_clients.rs` with LEDGER_TARGET and LEDGER_TOKEN set.
"""

import os
import unittest
import uuid

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


class ReflectionTest(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(os.environ["LEDGER_TARGET"])
        self.database = ProtoReflectionDescriptorDatabase(self.channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def tearDown(self):
        self.channel.close()

    def test_every_served_service_is_listed(self):
        services = set(self.database.get_services())
        for name in (
            "ledger.api.v1.Ledger",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ):
            self.assertIn(name, services)

    def test_message_types_resolve_across_the_files_they_import(self):
        request = self.pool.FindMessageTypeByName("ledger.api.v1.AddDonationRequest")
        donor_kind = request.fields_by_name["donor"].message_type.fields_by_name["kind"]
        self.assertEqual(donor_kind.enum_type.full_name, "ledger.events.v1.DonorKind")
        booking = self.pool.FindMessageTypeByName("ledger.api.v1.BookPaymentRequest")
        valuation = booking.fields_by_name["valuation_date"].message_type
        self.assertEqual(valuation.full_name, "google.protobuf.Timestamp")

    def test_a_call_built_from_reflection_alone_succeeds(self):
        service = self.pool.FindServiceByName("ledger.api.v1.Ledger")
        method = service.methods_by_name["NextId"]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        context_class = message_factory.GetMessageClass(
            method.input_type.fields_by_name["context"].message_type
        )
        call = self.channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        context = context_class(request_id=str(uuid.uuid4()), source="reflection-test")
        context.actor.kind = 1  # ACTOR_KIND_FRONTEND
        context.actor.id = "reflection-test"
        response = call(
            request_class(sequence="donation", count=2, context=context),
            metadata=[("authorization", f"Bearer {os.environ['LEDGER_TOKEN']}")],
        )
        self.assertEqual(response.last_id - response.first_id, 1)

    def test_an_unknown_symbol_is_reported_and_the_stream_goes_on(self):
        with self.assertRaises(KeyError):
            self.pool.FindMessageTypeByName("ledger.api.v1.NoSuchMessage")
        self.assertIsNotNone(self.pool.FindMessageTypeByName("ledger.api.v1.Donation"))


if __name__ == "__main__":
    unittest.main()
