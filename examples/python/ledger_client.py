#!/usr/bin/env python3
"""Example client for the ledger's gRPC intake, as a donation frontend writes it.

It walks one donation through the calls a frontend and a payment-notification handler make:

1. ``NextId`` takes a contribution tracking id (with its allocation token),
2. ``RecordContributionTracking`` records the banner/campaign data under that id,
3. ``AddDonation`` adds a credit-card donation that carries the tracking id,
4. ``BookPayment`` books its payment as the provider's notification would,
5. ``GetDonation`` reads the donation back.

Every mutating call carries a ``RequestContext`` with a request id the client chooses: sending
the same call again with the same id (a retry after a timeout) returns the first answer and
records nothing twice. Refused calls carry a ``google.rpc.BadRequest`` detail listing every bad
field with its rule; ``refusal()`` below shows how to read it.

Usage::

    pip install -r examples/python/requirements.txt
    python3 examples/python/ledger_client.py --target 127.0.0.1:50051 --token-file DATA_DIR/admin.token

The stubs are generated from ``proto/`` into ``examples/python/generated/`` on first run.
It prints one JSON object with the ids and states, and exits non-zero on any refusal.
"""

import argparse
import json
import pathlib
import sys
import uuid

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
GENERATED = HERE / "generated"


def generated_stubs():
    """Generates the Python stubs from the ledger's protos (once) and imports them."""
    marker = GENERATED / "ledger" / "api" / "v1" / "ledger_pb2_grpc.py"
    if not marker.exists():
        from grpc_tools import protoc
        import importlib.resources

        well_known = str(importlib.resources.files("grpc_tools") / "_proto")
        files = [str(p.relative_to(PROTO)) for p in sorted((PROTO / "ledger").rglob("*.proto"))]
        GENERATED.mkdir(exist_ok=True)
        code = protoc.main(
            ["protoc", f"-I{PROTO}", f"-I{well_known}", f"--python_out={GENERATED}",
             f"--grpc_python_out={GENERATED}", *files]
        )
        if code != 0:
            sys.exit(f"generating the stubs from {PROTO} failed (protoc exit {code})")
    sys.path.insert(0, str(GENERATED))
    from ledger.api.v1 import ledger_pb2, ledger_pb2_grpc
    from ledger.events.v1 import events_pb2

    return ledger_pb2, ledger_pb2_grpc, events_pb2


def refusal(error):
    """The status code, message and field violations of a refused call."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    fields = []
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [{"field": v.field, "rule": v.description} for v in bad.field_violations]
    return {"code": error.code().name, "message": error.details(), "fields": fields}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="host:port of the intake")
    parser.add_argument("--token-file", required=True, help="file holding a bearer token")
    parser.add_argument("--show-refusal", action="store_true",
                        help="also send one invalid donation and print how it was refused")
    args = parser.parse_args()

    import grpc

    ledger_pb2, ledger_pb2_grpc, events_pb2 = generated_stubs()
    token = pathlib.Path(args.token_file).read_text().strip()
    metadata = [("authorization", f"Bearer {token}")]
    stub = ledger_pb2_grpc.LedgerStub(grpc.insecure_channel(args.target))

    def context(kind, actor):
        return ledger_pb2.RequestContext(
            request_id=str(uuid.uuid4()),
            actor=ledger_pb2.Actor(kind=kind, id=actor),
            source="examples/python",
        )

    frontend = (ledger_pb2.ACTOR_KIND_FRONTEND, "spenden.example.org")
    provider = (ledger_pb2.ACTOR_KIND_PROVIDER, "creditcard")
    try:
        ids = stub.NextId(
            ledger_pb2.NextIdRequest(sequence="contribution-tracking", count=1,
                                     context=context(*frontend)),
            metadata=metadata,
        )
        tracking_id = ids.first_id
        stub.RecordContributionTracking(
            ledger_pb2.RecordContributionTrackingRequest(
                context=context(*frontend),
                contribution_tracking_id=tracking_id,
                allocation_token=ids.allocation_token,
                fields=events_pb2.ContributionTrackingFields(
                    amount="25.00", currency="EUR", utm_medium="banner",
                    utm_campaign="C26_WMDE_example", utm_source="web", language="de",
                    country="DE",
                ),
            ),
            metadata=metadata,
        )
        added = stub.AddDonation(
            ledger_pb2.AddDonationRequest(
                context=context(*frontend),
                donor=ledger_pb2.DonorInput(
                    kind=events_pb2.DONOR_KIND_PERSON, salutation="Frau",
                    first_name="Erika", last_name="Musterfrau", street="Beispielweg 1",
                    postcode="10963", city="Berlin", country="DE",
                    email="erika@example.org", wants_receipt=True,
                ),
                payment=ledger_pb2.PaymentInput(
                    method=events_pb2.PAYMENT_METHOD_CREDIT_CARD, amount_cents=2500,
                    currency="EUR", interval_months=0,
                ),
                tracking=ledger_pb2.TrackingInput(
                    campaign="C26_WMDE_example", keyword="banner-1",
                    contribution_tracking_id=tracking_id,
                ),
            ),
            metadata=metadata,
        )
        booked = stub.BookPayment(
            ledger_pb2.BookPaymentRequest(
                context=context(*provider), payment_id=added.payment_id,
                transaction_id=f"EXAMPLE-{uuid.uuid4().hex[:12]}", amount_cents=2500,
                currency="EUR",
            ),
            metadata=metadata,
        )
        donation = stub.GetDonation(
            ledger_pb2.GetDonationRequest(donation_id=added.donation_id), metadata=metadata
        )
    except grpc.RpcError as error:
        print(json.dumps({"refused": refusal(error)}), flush=True)
        return 1

    result = {
        "contribution_tracking_id": tracking_id,
        "donation_id": added.donation_id,
        "payment_id": added.payment_id,
        "payment_state": booked.payment_state,
        "amount_cents": donation.amount_cents,
    }
    if args.show_refusal:
        try:
            stub.AddDonation(
                ledger_pb2.AddDonationRequest(
                    context=context(*frontend),
                    payment=ledger_pb2.PaymentInput(
                        method=events_pb2.PAYMENT_METHOD_CREDIT_CARD, amount_cents=-5
                    ),
                ),
                metadata=metadata,
            )
            result["refusal"] = None
        except grpc.RpcError as error:
            result["refusal"] = refusal(error)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
