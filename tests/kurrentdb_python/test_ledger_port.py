"""The Python KurrentDB client (kurrentdbclient 1.0.4, PyPI) against the ledger's KurrentDB port.

Run by `tests/api/kurrentdb_python.rs` with KDB_TARGET=host:port of a port that allows
anonymous access. Each test uses fresh stream names, so the tests share one log.
"""
import os
import unittest
from uuid import uuid4

from kurrentdbclient import CaughtUp, Checkpoint, KurrentDBClient, NewEvent, StreamState
from kurrentdbclient.exceptions import (
    NotFoundError,
    StreamIsDeletedError,
    WrongCurrentVersionError,
)

TARGET = os.environ["KDB_TARGET"]


def event(kind="OrderCreated", n=0):
    return NewEvent(type=kind, data=('{"n": %d}' % n).encode(), metadata=b'{"by": "python"}')


class LedgerPortTest(unittest.TestCase):
    def setUp(self):
        self.client = KurrentDBClient(uri=f"kdb://{TARGET}?Tls=false")

    def tearDown(self):
        # As the client's own test suite does after every test.
        self.assertEqual(list(self.client.list_subscriptions()), [])
        self.client.close()

    def test_an_append_reads_back_with_its_id_type_data_and_commit_position(self):
        stream = str(uuid4())
        e = event()
        position = self.client.append_events(stream, current_version=StreamState.NO_STREAM, events=[e])
        events = self.client.get_stream(stream)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0].id, e.id)
        self.assertEqual(events[0].type, "OrderCreated")
        self.assertEqual(events[0].data, e.data)
        self.assertEqual(events[0].metadata, e.metadata)
        self.assertEqual(events[0].commit_position, position)
        self.assertEqual(self.client.get_commit_position(), position)

    def test_batch_appends_check_the_expected_version_and_retries_are_idempotent(self):
        stream = str(uuid4())
        batch = [event(n=i) for i in range(3)]
        first = self.client.append_events(stream, current_version=StreamState.NO_STREAM, events=batch)
        again = self.client.append_events(stream, current_version=StreamState.NO_STREAM, events=batch)
        self.assertEqual(first, again)
        self.assertEqual(len(self.client.get_stream(stream)), 3)
        with self.assertRaises(WrongCurrentVersionError):
            self.client.append_events(stream, current_version=0, events=[event()])
        self.client.append_events(stream, current_version=2, events=[event()])
        self.client.append_events(stream, current_version=StreamState.EXISTS, events=[event()])
        self.client.append_events(stream, current_version=StreamState.ANY, events=[event()])
        self.assertEqual(self.client.get_current_version(stream), 5)

    def test_reads_go_both_ways_and_a_missing_stream_is_not_found(self):
        stream = str(uuid4())
        self.client.append_events(stream, current_version=StreamState.NO_STREAM,
                                  events=[event(n=i) for i in range(5)])
        self.assertEqual([e.stream_position for e in self.client.get_stream(stream, backwards=True, limit=2)], [4, 3])
        self.assertEqual([e.stream_position for e in self.client.get_stream(stream, stream_position=3)], [3, 4])
        with self.assertRaises(NotFoundError):
            self.client.get_stream(str(uuid4()))
        self.assertEqual(self.client.get_current_version(str(uuid4())), StreamState.NO_STREAM)
        last = self.client.get_commit_position()
        forwards = list(self.client.read_all(commit_position=last))
        self.assertEqual([e.commit_position for e in forwards], [last])
        backwards = list(self.client.read_all(commit_position=last, backwards=True, limit=1))
        self.assertLess(backwards[0].commit_position, last)
        self.assertEqual(self.client.get_commit_position(filter_exclude=[".*"]), 0)

    def test_subscriptions_start_after_their_position_catch_up_and_checkpoint(self):
        start = self.client.get_commit_position()
        stream = str(uuid4())
        self.client.append_events(stream, current_version=StreamState.NO_STREAM,
                                  events=[event(n=i) for i in range(3)])
        subscription = self.client.subscribe_to_all(commit_position=start, include_caught_up=True, timeout=10)
        seen = []
        for item in subscription:
            if isinstance(item, CaughtUp):
                break
            seen.append(item)
        subscription.stop()
        self.assertEqual([e.stream_name for e in seen], [stream] * 3)
        subscription = self.client.subscribe_to_all(
            commit_position=start, filter_exclude=[".*"], include_checkpoints=True,
            window_size=1, checkpoint_interval_multiplier=1, timeout=10)
        for item in subscription:
            self.assertIsInstance(item, Checkpoint)
            break
        subscription.stop()
        subscription = self.client.subscribe_to_stream(stream, stream_position=0, timeout=10)
        self.assertEqual(next(iter(subscription)).stream_position, 1)
        subscription.stop()

    def test_system_events_are_in_all_but_excluded_by_default(self):
        stream = str(uuid4())
        self.client.append_events(stream, current_version=StreamState.NO_STREAM, events=[event()])
        self.client.set_stream_metadata(stream, metadata={"owner": "python"})
        everything = list(self.client.read_all(backwards=True, limit=5, filter_exclude=[]))
        self.assertIn("$metadata", [e.type for e in everything])
        default = list(self.client.read_all(backwards=True, limit=5))
        self.assertNotIn("$metadata", [e.type for e in default])

    def test_stream_metadata_and_soft_delete_behave_as_the_server_documents(self):
        stream = str(uuid4())
        self.client.append_events(stream, current_version=StreamState.NO_STREAM,
                                  events=[event(), event()])
        metadata, version = self.client.get_stream_metadata(stream)
        self.assertEqual(metadata, {})
        self.client.delete_stream(stream, current_version=StreamState.EXISTS)
        with self.assertRaises(NotFoundError):
            self.client.get_stream(stream)
        self.assertEqual(self.client.get_current_version(stream), StreamState.NO_STREAM)
        metadata, version = self.client.get_stream_metadata(stream)
        self.assertEqual(metadata["$tb"], 9223372036854775807)
        metadata["foo"] = "bar"
        self.client.set_stream_metadata(stream, metadata=metadata, current_version=version)
        self.assertEqual(self.client.get_stream_metadata(stream)[0]["foo"], "bar")
        self.client.delete_stream(stream, current_version=1)
        with self.assertRaises(WrongCurrentVersionError):
            self.client.delete_stream(stream, current_version=0)
        e = event()
        self.client.append_events(stream, current_version=StreamState.NO_STREAM, events=[e])
        self.assertEqual(self.client.get_current_version(stream), 2)
        self.assertEqual([x.id for x in self.client.get_stream(stream)], [e.id])
        with self.assertRaises(NotFoundError):
            self.client.delete_stream(str(uuid4()), current_version=StreamState.ANY)

    def test_links_resolve_to_their_events_when_asked(self):
        target, links = str(uuid4()), str(uuid4())
        self.client.append_events(
            target, current_version=StreamState.NO_STREAM, events=[event(n=0), event(n=1)]
        )
        self.client.append_events(
            links,
            current_version=StreamState.NO_STREAM,
            events=[
                NewEvent(type="$>", data=f"1@{target}".encode(), content_type="application/octet-stream"),
                NewEvent(type="$>", data=f"5@{target}".encode(), content_type="application/octet-stream"),
            ],
        )
        resolved = self.client.get_stream(links, resolve_links=True)
        # The link to a revision that does not exist comes without an event: the client drops it.
        self.assertEqual(len(resolved), 1)
        self.assertEqual((resolved[0].stream_name, resolved[0].stream_position), (target, 1))
        self.assertEqual(resolved[0].data, b'{"n": 1}')
        self.assertEqual((resolved[0].link.type, resolved[0].link.stream_name), ("$>", links))
        self.assertTrue(resolved[0].is_resolved_event)
        plain = self.client.get_stream(links)
        self.assertEqual([e.type for e in plain], ["$>", "$>"])
        self.assertTrue(all(e.link is None for e in plain))

    def test_category_and_event_type_projection_streams_resolve_to_their_events(self):
        category = "c" + uuid4().hex
        kind = "Placed" + uuid4().hex
        first, second = f"{category}-1", f"{category}-2"
        self.client.append_events(
            first, current_version=StreamState.NO_STREAM, events=[event(kind, n=0), event(n=1)]
        )
        self.client.append_events(second, current_version=StreamState.NO_STREAM, events=[event(kind, n=2)])
        by_category = self.client.get_stream(f"$ce-{category}", resolve_links=True)
        self.assertEqual(
            [(e.stream_name, e.stream_position) for e in by_category], [(first, 0), (first, 1), (second, 0)]
        )
        self.assertEqual([e.link.stream_position for e in by_category], [0, 1, 2])
        self.assertEqual(by_category[2].data, b'{"n": 2}')
        by_type = self.client.get_stream(f"$et-{kind}", resolve_links=True)
        self.assertEqual([(e.stream_name, e.type) for e in by_type], [(first, kind), (second, kind)])
        links = self.client.get_stream(f"$et-{kind}")
        self.assertEqual([e.data for e in links], [f"0@{first}".encode(), f"0@{second}".encode()])
        with self.assertRaises(NotFoundError):
            self.client.get_stream(f"$ce-{category}x")

    def test_a_tombstone_is_final(self):
        stream = str(uuid4())
        self.client.tombstone_stream(str(uuid4()), current_version=StreamState.ANY)
        with self.assertRaises(NotFoundError):
            self.client.tombstone_stream(str(uuid4()), current_version=StreamState.EXISTS)
        self.client.append_events(stream, current_version=StreamState.NO_STREAM, events=[event(), event()])
        with self.assertRaises(WrongCurrentVersionError):
            self.client.tombstone_stream(stream, current_version=0)
        self.client.tombstone_stream(stream, current_version=1)
        with self.assertRaises(StreamIsDeletedError):
            self.client.tombstone_stream(stream, current_version=1)
        with self.assertRaises(StreamIsDeletedError):
            self.client.get_stream(stream)
        with self.assertRaises(StreamIsDeletedError):
            self.client.get_current_version(stream)
        with self.assertRaises(StreamIsDeletedError):
            self.client.append_events(stream, current_version=1, events=[event()])

    def test_gossip_answers_one_alive_leader_at_the_target(self):
        members = self.client.read_gossip()
        self.assertEqual(len(members), 1)
        host, port = TARGET.split(":")
        self.assertEqual(members[0].port, int(port))
        self.assertEqual(members[0].state, "NODE_STATE_LEADER")


if __name__ == "__main__":
    unittest.main(verbosity=2)
