//! The official Rust client (`kurrentdb` crate) against the ledger's KurrentDB port: every
//! Streams operation as the client performs it, and what the client raises when refused.
use std::time::Duration;

use bytes::Bytes;
use kurrentdb::{
    AppendToStreamOptions, DeleteStreamOptions, Error, EventData, ReadAllOptions,
    ReadStreamOptions, StreamMetadata, StreamPosition, StreamState, SubscribeToAllOptions,
    SubscribeToStreamOptions, SubscriptionEvent, SubscriptionFilter, TombstoneStreamOptions,
};
use uuid::Uuid;

use crate::support::api::spawn_app;
use crate::support::kurrentdb::serve;

fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

fn events(n: usize, kind: &str) -> Vec<EventData> {
    (0..n)
        .map(|i| EventData::json(kind, &serde_json::json!({ "n": i })).unwrap())
        .collect()
}

async fn read_stream(
    client: &kurrentdb::Client,
    stream: &str,
    options: &ReadStreamOptions,
) -> Result<Vec<kurrentdb::RecordedEvent>, Error> {
    let mut read = client.read_stream(stream, options).await?;
    let mut out = Vec::new();
    while let Some(e) = read.next().await? {
        out.push(e.event.expect("an event"));
    }
    Ok(out)
}

async fn read_all(
    client: &kurrentdb::Client,
    options: &ReadAllOptions,
) -> Vec<kurrentdb::RecordedEvent> {
    let mut read = client.read_all(options).await.unwrap();
    let mut out = Vec::new();
    while let Some(e) = read.next().await.unwrap() {
        out.push(e.event.expect("an event"));
    }
    out
}

#[tokio::test]
async fn an_append_reads_back_with_its_id_type_data_ticks_and_log_position() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    let id = Uuid::new_v4();
    let event = EventData::json("OrderPlaced", &serde_json::json!({"sku": "A-1"}))
        .unwrap()
        .id(id)
        .metadata(Bytes::from_static(b"{\"by\":\"etl\"}"));
    let written = client
        .append_to_stream(stream.as_str(), &AppendToStreamOptions::default(), event)
        .await
        .unwrap();
    assert_eq!(written.next_expected_version, 0);
    assert_eq!(written.position.prepare, written.position.commit);
    let read = read_stream(&client, &stream, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    let e = &read[0];
    assert_eq!(e.id, id);
    assert_eq!(e.event_type, "OrderPlaced");
    assert_eq!(e.stream_id(), stream);
    assert_eq!(e.revision, 0);
    assert!(e.is_json);
    assert_eq!(&e.custom_metadata[..], b"{\"by\":\"etl\"}");
    assert_eq!(e.as_json::<serde_json::Value>().unwrap()["sku"], "A-1");
    assert_eq!(e.position, written.position);
    // `created` arrives as ticks the client turns into today's date.
    assert_eq!(e.created.date_naive(), chrono::Utc::now().date_naive());
    // The log holds exactly what the port acknowledged.
    let logged = app.log.read_all(written.position.commit, 1).await.unwrap();
    assert_eq!(logged[0].id, id);
    assert_eq!(logged[0].stream, stream);
}

#[tokio::test]
async fn every_expected_revision_form_is_checked_and_a_mismatch_names_both_revisions() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    let opts = |s: StreamState| AppendToStreamOptions::default().stream_state(s);
    let refused = client
        .append_to_stream(
            stream.as_str(),
            &opts(StreamState::StreamExists),
            events(1, "A"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::WrongExpectedVersion { .. }),
        "{refused:?}"
    );
    client
        .append_to_stream(
            stream.as_str(),
            &opts(StreamState::NoStream),
            events(2, "A"),
        )
        .await
        .unwrap();
    client
        .append_to_stream(
            stream.as_str(),
            &opts(StreamState::StreamRevision(1)),
            events(1, "A"),
        )
        .await
        .unwrap();
    client
        .append_to_stream(
            stream.as_str(),
            &opts(StreamState::StreamExists),
            events(1, "A"),
        )
        .await
        .unwrap();
    let refused = client
        .append_to_stream(
            stream.as_str(),
            &opts(StreamState::StreamRevision(1)),
            events(1, "A"),
        )
        .await
        .unwrap_err();
    match refused {
        Error::WrongExpectedVersion { expected, current } => {
            assert_eq!(expected, StreamState::StreamRevision(1));
            assert_eq!(current, kurrentdb::CurrentRevision::Current(3));
        }
        other => panic!("{other:?}"),
    }
    let refused = client
        .append_to_stream(
            stream.as_str(),
            &opts(StreamState::NoStream),
            events(1, "A"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::WrongExpectedVersion { .. }));
    let done = client
        .append_to_stream(stream.as_str(), &opts(StreamState::Any), events(1, "A"))
        .await
        .unwrap();
    assert_eq!(done.next_expected_version, 4);
}

#[tokio::test]
async fn re_appending_the_same_event_ids_answers_the_first_result_and_writes_nothing() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    let batch: Vec<EventData> = events(3, "A")
        .into_iter()
        .map(|e| e.id(Uuid::new_v4()))
        .collect();
    let opts = AppendToStreamOptions::default().stream_state(StreamState::NoStream);
    let first = client
        .append_to_stream(stream.as_str(), &opts, batch.clone())
        .await
        .unwrap();
    let again = client
        .append_to_stream(stream.as_str(), &opts, batch)
        .await
        .unwrap();
    assert_eq!(first.next_expected_version, again.next_expected_version);
    assert_eq!(first.position, again.position);
    let read = read_stream(&client, &stream, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(read.len(), 3);
    // The same ids in another stream are other events there, as on KurrentDB (the Python
    // client's own suite appends one event to two streams).
    let other = fresh("orders");
    let there = client
        .append_to_stream(other.as_str(), &opts, batch_ids(&read))
        .await
        .unwrap();
    assert_ne!(there.position, first.position);
    let read_there = read_stream(&client, &other, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(
        read_there.iter().map(|e| e.id).collect::<Vec<_>>(),
        read.iter().map(|e| e.id).collect::<Vec<_>>()
    );
}

/// Events with the ids (and types) of `read`.
fn batch_ids(read: &[kurrentdb::RecordedEvent]) -> Vec<EventData> {
    read.iter()
        .map(|e| {
            EventData::json(&e.event_type, &serde_json::json!({}))
                .unwrap()
                .id(e.id)
        })
        .collect()
}

#[tokio::test]
async fn batch_append_is_offered_and_writes_through_the_log() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let info = client.server_info().await.unwrap();
    assert!(info.version() >= (23, 10), "{:?}", info.version());
    let batch = client
        .batch_append(&Default::default())
        .await
        .expect("ServerFeatures lists batchappend");
    let stream = fresh("orders");
    let result = batch
        .append_to_stream(stream.as_str(), StreamState::NoStream, events(5, "B"))
        .await
        .unwrap();
    assert_eq!(result.current_revision(), Some(4));
    let refused = batch
        .append_to_stream(stream.as_str(), StreamState::NoStream, events(1, "B"))
        .await
        .unwrap_err();
    // The client reads a batch's error status by code and message, not by its detail.
    assert!(
        matches!(&refused, Error::Grpc { message, .. } if message.contains("WrongExpectedVersion")),
        "{refused:?}"
    );
    let read = read_stream(&client, &stream, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(read.len(), 5);
}

#[tokio::test]
async fn a_stream_reads_both_ways_from_every_kind_of_start() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    client
        .append_to_stream(stream.as_str(), &Default::default(), events(10, "A"))
        .await
        .unwrap();
    let revisions = |events: Vec<kurrentdb::RecordedEvent>| {
        events.iter().map(|e| e.revision).collect::<Vec<_>>()
    };
    // (This client turns `End` into a backward read and `Start` into a forward one.)
    let forwards = ReadStreamOptions::default().forwards();
    let backwards = ReadStreamOptions::default().backwards();
    let cases = [
        (
            forwards
                .clone()
                .position(StreamPosition::Start)
                .max_count(3),
            vec![0, 1, 2],
        ),
        (
            forwards.clone().position(StreamPosition::Position(7)),
            vec![7, 8, 9],
        ),
        (
            backwards.clone().position(StreamPosition::End).max_count(2),
            vec![9, 8],
        ),
        (
            backwards.position(StreamPosition::Position(2)),
            vec![2, 1, 0],
        ),
    ];
    for (options, expected) in cases {
        assert_eq!(
            revisions(read_stream(&client, &stream, &options).await.unwrap()),
            expected
        );
    }
    // The read ends with the stream's last revision.
    let mut read = client
        .read_stream(stream.as_str(), &ReadStreamOptions::default())
        .await
        .unwrap();
    let mut last = None;
    while let Some(item) = read.next_read_event().await.unwrap() {
        if let kurrentdb::ReadEvent::LastStreamPosition(p) = item {
            last = Some(p);
        }
    }
    assert_eq!(last, Some(9));
    let missing = read_stream(&client, &fresh("nothing"), &ReadStreamOptions::default()).await;
    assert!(
        matches!(missing, Err(Error::ResourceNotFound)),
        "{missing:?}"
    );
}

#[tokio::test]
async fn all_reads_both_ways_from_start_end_and_a_position() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    let written = client
        .append_to_stream(stream.as_str(), &Default::default(), events(5, "A"))
        .await
        .unwrap();
    let last = written.position.commit;
    let positions = |events: Vec<kurrentdb::RecordedEvent>| {
        events.iter().map(|e| e.position.commit).collect::<Vec<_>>()
    };
    let from = |p: u64| {
        StreamPosition::Position(kurrentdb::Position {
            commit: p,
            prepare: p,
        })
    };
    let all = ReadAllOptions::default();
    assert_eq!(
        positions(read_all(&client, &all.clone().position(StreamPosition::Start)).await),
        (1..=last).collect::<Vec<_>>()
    );
    // Forwards from a position includes it; backwards from it excludes it.
    assert_eq!(
        positions(read_all(&client, &all.clone().position(from(last - 1))).await),
        vec![last - 1, last]
    );
    assert_eq!(
        positions(
            read_all(
                &client,
                &all.clone()
                    .backwards()
                    .position(from(last - 1))
                    .max_count(2)
            )
            .await
        ),
        vec![last - 2, last - 3]
    );
    assert_eq!(
        positions(
            read_all(
                &client,
                &all.backwards().position(StreamPosition::End).max_count(1)
            )
            .await
        ),
        vec![last]
    );
}

#[tokio::test]
async fn a_stream_subscription_catches_up_says_so_and_follows_live_appends() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    client
        .append_to_stream(stream.as_str(), &Default::default(), events(3, "A"))
        .await
        .unwrap();
    let mut sub = client
        .subscribe_to_stream(
            stream.as_str(),
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Start),
        )
        .await;
    let mut seen = Vec::new();
    let mut caught_up = false;
    while seen.len() < 5 {
        match tokio::time::timeout(Duration::from_secs(30), sub.next_subscription_event())
            .await
            .expect("the subscription answers")
            .unwrap()
        {
            SubscriptionEvent::EventAppeared(e) => seen.push(e.get_original_event().revision),
            SubscriptionEvent::CaughtUp(_) => {
                caught_up = true;
                assert_eq!(seen, vec![0, 1, 2]);
                client
                    .append_to_stream(stream.as_str(), &Default::default(), events(2, "A"))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    assert!(caught_up);
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    // From a revision: that revision excluded.
    let mut sub = client
        .subscribe_to_stream(
            stream.as_str(),
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Position(3)),
        )
        .await;
    let next = sub.next().await.unwrap();
    assert_eq!(next.get_original_event().revision, 4);
}

#[tokio::test]
async fn an_all_subscription_with_a_prefix_filter_skips_the_rest_and_sends_checkpoints() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let start = client
        .append_to_stream(fresh("noise").as_str(), &Default::default(), events(1, "N"))
        .await
        .unwrap()
        .position;
    let wanted = fresh("wanted");
    for _ in 0..3 {
        client
            .append_to_stream(fresh("noise").as_str(), &Default::default(), events(4, "N"))
            .await
            .unwrap();
        client
            .append_to_stream(wanted.as_str(), &Default::default(), events(1, "W"))
            .await
            .unwrap();
    }
    let filter = SubscriptionFilter::on_stream_name().add_prefix("wanted-");
    let mut sub = client
        .subscribe_to_all(
            &SubscribeToAllOptions::default()
                .position(StreamPosition::Position(start))
                .filter(filter),
        )
        .await;
    let mut wanted_seen = 0;
    let mut checkpoints = 0;
    while wanted_seen < 3 || checkpoints == 0 {
        match tokio::time::timeout(Duration::from_secs(30), sub.next_subscription_event())
            .await
            .expect("the subscription answers")
            .unwrap()
        {
            SubscriptionEvent::EventAppeared(e) => {
                let e = e.get_original_event();
                assert_eq!(e.stream_id(), wanted);
                assert!(
                    e.position.commit > start.commit,
                    "the start position is excluded"
                );
                wanted_seen += 1;
            }
            SubscriptionEvent::Checkpoint(_) => checkpoints += 1,
            _ => {}
        }
    }
    // A regex on the event type that excludes system events, as the client builds it.
    let mut sub = client
        .subscribe_to_all(
            &SubscribeToAllOptions::default()
                .position(StreamPosition::Start)
                .filter(SubscriptionFilter::on_event_type().exclude_system_events()),
        )
        .await;
    let first = sub.next().await.unwrap();
    assert!(!first.get_original_event().event_type.starts_with('$'));
}

#[tokio::test]
async fn stream_metadata_round_trips_and_max_count_hides_older_events() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    assert!(matches!(
        client
            .get_stream_metadata(stream.as_str(), &Default::default())
            .await
            .unwrap(),
        kurrentdb::StreamMetadataResult::NotFound
    ));
    client
        .append_to_stream(stream.as_str(), &Default::default(), events(5, "A"))
        .await
        .unwrap();
    let metadata = StreamMetadata::builder().max_count(2).build();
    client
        .set_stream_metadata(stream.as_str(), &Default::default(), &metadata)
        .await
        .unwrap();
    match client
        .get_stream_metadata(stream.as_str(), &Default::default())
        .await
        .unwrap()
    {
        kurrentdb::StreamMetadataResult::Success(m) => assert_eq!(m.metadata().max_count, Some(2)),
        other => panic!("{other:?}"),
    }
    let read = read_stream(&client, &stream, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![3, 4]
    );
    // The `$metadata` event is in `$all`, as a system event.
    let all = read_all(
        &client,
        &ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1),
    )
    .await;
    assert_eq!(all[0].event_type, "$metadata");
    assert_eq!(all[0].stream_id(), format!("$${stream}"));
}

#[tokio::test]
async fn a_soft_deleted_stream_reads_as_missing_and_an_append_recreates_it_numbering_on() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    client
        .append_to_stream(stream.as_str(), &Default::default(), events(2, "A"))
        .await
        .unwrap();
    client
        .delete_stream(stream.as_str(), &DeleteStreamOptions::default())
        .await
        .unwrap();
    let read = read_stream(&client, &stream, &ReadStreamOptions::default()).await;
    assert!(matches!(read, Err(Error::ResourceNotFound)), "{read:?}");
    let done = client
        .append_to_stream(
            stream.as_str(),
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            events(1, "A"),
        )
        .await
        .unwrap();
    assert_eq!(done.next_expected_version, 2);
    let read = read_stream(&client, &stream, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(read.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![2]);
    // Deleting a stream that never existed is a wrong expected version (the server's rule).
    let refused = client
        .delete_stream(fresh("never").as_str(), &DeleteStreamOptions::default())
        .await
        .unwrap_err();
    // The Rust client maps FailedPrecondition to a plain gRPC error.
    assert!(
        matches!(&refused, Error::Grpc { message, .. } if message.contains("Actual version: -1")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_tombstoned_stream_refuses_reads_appends_and_another_tombstone() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let stream = fresh("orders");
    client
        .append_to_stream(stream.as_str(), &Default::default(), events(2, "A"))
        .await
        .unwrap();
    client
        .tombstone_stream(stream.as_str(), &TombstoneStreamOptions::default())
        .await
        .unwrap();
    let read = read_stream(&client, &stream, &ReadStreamOptions::default()).await;
    assert!(matches!(read, Err(Error::ResourceDeleted)), "{read:?}");
    let append = client
        .append_to_stream(stream.as_str(), &Default::default(), events(1, "A"))
        .await
        .unwrap_err();
    assert!(matches!(append, Error::ResourceDeleted), "{append:?}");
    let again = client
        .tombstone_stream(stream.as_str(), &TombstoneStreamOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(again, Error::ResourceDeleted), "{again:?}");
}

#[tokio::test]
async fn users_get_what_their_grants_allow_and_nothing_more() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), false).await;
    let anonymous = port.client();
    let refused = anonymous
        .append_to_stream(
            fresh("orders").as_str(),
            &Default::default(),
            events(1, "A"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::AccessDenied), "{refused:?}");
    let reader = port.client_as(Some(("reader", "reader-pw")));
    let refused = reader
        .append_to_stream(
            fresh("orders").as_str(),
            &Default::default(),
            events(1, "A"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::AccessDenied), "{refused:?}");
    let wrong = port.client_as(Some(("reader", "guess")));
    let refused = read_stream(&wrong, "orders-1", &ReadStreamOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::AccessDenied), "{refused:?}");
    let etl = port.client_as(Some(("etl", "etl-pw")));
    etl.append_to_stream(
        fresh("orders").as_str(),
        &Default::default(),
        events(1, "A"),
    )
    .await
    .unwrap();
    // `*` does not reach the ledger's categories: no forged donation event.
    let head = app.log.head_position().await.unwrap();
    let refused = etl
        .append_to_stream(
            "donation-999",
            &Default::default(),
            events(1, "DonationCreated.v2"),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::AccessDenied), "{refused:?}");
    let refused = etl
        .tombstone_stream("payment-1", &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::AccessDenied), "{refused:?}");
    assert_eq!(
        app.log.head_position().await.unwrap(),
        head,
        "nothing was appended"
    );
}

#[tokio::test]
async fn the_port_serves_tls_with_the_intakes_certificate_flags() {
    let app = spawn_app().await;
    let port = crate::support::kurrentdb::serve_tls(app.log.clone()).await;
    let settings = format!(
        "esdb://etl:etl-pw@localhost:{}?tls=true&tlsVerifyCert=false&defaultDeadline=30000",
        port.addr.port()
    )
    .parse::<kurrentdb::ClientSettings>()
    .unwrap();
    let client = kurrentdb::Client::new(settings).unwrap();
    let stream = fresh("orders");
    client
        .append_to_stream(stream.as_str(), &Default::default(), events(2, "A"))
        .await
        .unwrap();
    let read = read_stream(&client, &stream, &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    // A plaintext client gets no answer from the TLS port.
    let plaintext = read_stream(&port.client(), &stream, &ReadStreamOptions::default()).await;
    assert!(plaintext.is_err(), "{plaintext:?}");
}

fn denied<T: std::fmt::Debug>(result: Result<T, Error>) {
    assert!(
        matches!(&result, Err(Error::AccessDenied)),
        "expected access denied: {result:?}"
    );
}

#[tokio::test]
async fn a_streams_acl_narrows_every_operation_to_the_users_and_groups_it_names() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), false).await;
    let etl = port.client_as(Some(("etl", "etl-pw")));
    let reader = port.client_as(Some(("reader", "reader-pw")));
    let auditor = port.client_as(Some(("auditor", "auditor-pw")));
    let root = port.client_as(Some(("root", "root-pw")));
    let stream = fresh("orders");
    etl.append_to_stream(stream.as_str(), &Default::default(), events(2, "A"))
        .await
        .unwrap();
    let acl = kurrentdb::StreamAclBuilder::new()
        .add_read_roles("etl")
        .add_read_roles("auditors")
        .add_write_roles("etl")
        .add_meta_read_roles("etl")
        .add_meta_write_roles("etl")
        .build();
    let mut metadata = StreamMetadata::builder()
        .acl(kurrentdb::Acl::Stream(acl))
        .build();
    // An empty list removes everyone (but `$admins`) from deleting.
    metadata.acl = match metadata.acl {
        Some(kurrentdb::Acl::Stream(mut acl)) => {
            acl.delete_roles = Some(Vec::new());
            Some(kurrentdb::Acl::Stream(acl))
        }
        other => other,
    };
    etl.set_stream_metadata(stream.as_str(), &Default::default(), &metadata)
        .await
        .unwrap();

    // Reading: the list names etl and the group auditors; `$admins` pass every list; reader's
    // `*` grant is not enough.
    denied(read_stream(&reader, &stream, &ReadStreamOptions::default()).await);
    for client in [&etl, &auditor, &root] {
        let read = read_stream(client, &stream, &ReadStreamOptions::default())
            .await
            .unwrap();
        assert_eq!(read.len(), 2);
    }
    denied(
        reader
            .subscribe_to_stream(stream.as_str(), &SubscribeToStreamOptions::default())
            .await
            .next()
            .await,
    );
    // Writing and deleting, refused without appending anything.
    let head = app.log.head_position().await.unwrap();
    denied(
        auditor
            .append_to_stream(stream.as_str(), &Default::default(), events(1, "A"))
            .await,
    );
    denied(
        etl.delete_stream(stream.as_str(), &DeleteStreamOptions::default())
            .await,
    );
    denied(
        etl.tombstone_stream(stream.as_str(), &TombstoneStreamOptions::default())
            .await,
    );
    // The metadata: read and written by etl only.
    denied(
        auditor
            .get_stream_metadata(stream.as_str(), &Default::default())
            .await,
    );
    denied(
        auditor
            .set_stream_metadata(
                stream.as_str(),
                &Default::default(),
                &StreamMetadata::builder().build(),
            )
            .await,
    );
    assert_eq!(
        app.log.head_position().await.unwrap(),
        head,
        "nothing appended"
    );
    match etl
        .get_stream_metadata(stream.as_str(), &Default::default())
        .await
        .unwrap()
    {
        kurrentdb::StreamMetadataResult::Success(m) => {
            assert_eq!(m.metadata().acl, metadata.acl)
        }
        other => panic!("{other:?}"),
    }
    etl.append_to_stream(stream.as_str(), &Default::default(), events(1, "A"))
        .await
        .unwrap();
    // `$all` is governed by the grants alone: reader's `*` still reads it all.
    let all = read_all(
        &reader,
        &ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1),
    )
    .await;
    assert_eq!(all[0].stream_id(), stream);
    // An administrator deletes; the list lives on in the metadata.
    root.delete_stream(stream.as_str(), &DeleteStreamOptions::default())
        .await
        .unwrap();
    // A malformed list is refused, naming the rule, and written nowhere.
    let head = app.log.head_position().await.unwrap();
    let bad = EventData::json("$metadata", &serde_json::json!({"$acl": {"$r": 5}})).unwrap();
    let refused = etl
        .append_to_stream(format!("$${stream}"), &Default::default(), bad)
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("`$acl.$r`"), "{refused:?}");
    assert_eq!(
        app.log.head_position().await.unwrap(),
        head,
        "nothing appended"
    );
}

#[tokio::test]
async fn links_resolve_to_their_events_when_asked_and_stay_links_otherwise() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let orders = fresh("orders");
    let secret = fresh("secret");
    let gone = fresh("gone");
    let links = fresh("links");
    for stream in [&orders, &secret, &gone] {
        client
            .append_to_stream(stream.as_str(), &Default::default(), events(3, "A"))
            .await
            .unwrap();
    }
    // `secret` is readable by etl alone; `gone` is deleted after its link is written.
    let acl = kurrentdb::StreamAclBuilder::new()
        .add_read_roles("etl")
        .build();
    client
        .set_stream_metadata(
            secret.as_str(),
            &Default::default(),
            &StreamMetadata::builder()
                .acl(kurrentdb::Acl::Stream(acl))
                .build(),
        )
        .await
        .unwrap();
    let link = |to: &str| EventData::binary("$>", Bytes::from(to.to_owned()));
    client
        .append_to_stream(
            links.as_str(),
            &Default::default(),
            vec![
                link(&format!("1@{orders}")),
                link(&format!("9@{orders}")),
                link(&format!("0@{secret}")),
                link(&format!("2@{gone}")),
                link("not a link"),
            ],
        )
        .await
        .unwrap();
    client
        .delete_stream(gone.as_str(), &DeleteStreamOptions::default())
        .await
        .unwrap();

    let resolved = |options: ReadStreamOptions, as_user: Option<(&'static str, &'static str)>| {
        let client = port.client_as(as_user);
        let links = links.clone();
        async move {
            let mut read = client.read_stream(links.as_str(), &options).await.unwrap();
            let mut out = Vec::new();
            while let Some(e) = read.next().await.unwrap() {
                out.push(e);
            }
            out
        }
    };
    let read = resolved(ReadStreamOptions::default().resolve_link_tos(), None).await;
    assert_eq!(read.len(), 5);
    let first = &read[0];
    assert!(first.is_resolved());
    let (event, link) = (first.event.as_ref().unwrap(), first.link.as_ref().unwrap());
    assert_eq!((event.stream_id(), event.revision), (orders.as_str(), 1));
    assert_eq!((link.stream_id(), link.revision), (links.as_str(), 0));
    assert_eq!(link.event_type, "$>");
    assert_eq!(first.get_original_event().id, link.id);
    assert_eq!(first.commit_position, Some(link.position.commit));
    // A missing revision, a stream the caller may not read, a deleted stream, a malformed
    // link: the link alone, with no event.
    for unresolved in &read[1..] {
        assert!(unresolved.event.is_none(), "{unresolved:?}");
        assert_eq!(unresolved.link.as_ref().unwrap().event_type, "$>");
    }
    // etl is on `secret`'s list.
    let as_etl = resolved(
        ReadStreamOptions::default().resolve_link_tos(),
        Some(("etl", "etl-pw")),
    )
    .await;
    let event = as_etl[2].event.as_ref().expect("resolved for etl");
    assert_eq!((event.stream_id(), event.revision), (secret.as_str(), 0));
    // Without resolve_link_tos every link is an event of its own.
    let plain = resolved(ReadStreamOptions::default(), None).await;
    assert!(plain
        .iter()
        .all(|e| e.link.is_none() && e.event.as_ref().unwrap().event_type == "$>"));
    // A subscription resolves too.
    let mut subscription = client
        .subscribe_to_stream(
            links.as_str(),
            &SubscribeToStreamOptions::default()
                .start_from(StreamPosition::Start)
                .resolve_link_tos(),
        )
        .await;
    let first = subscription.next().await.unwrap();
    assert_eq!(first.event.unwrap().stream_id(), orders);
}

/// The links of a read, as `(revision, data)`, and the events they resolve to, if asked.
async fn links_of(
    client: &kurrentdb::Client,
    stream: &str,
    options: &ReadStreamOptions,
) -> Result<Vec<kurrentdb::ResolvedEvent>, Error> {
    let mut read = client.read_stream(stream, options).await?;
    let mut out = Vec::new();
    while let Some(e) = read.next().await? {
        out.push(e);
    }
    Ok(out)
}

#[tokio::test]
async fn category_and_event_type_streams_link_every_event_in_log_order_and_resolve_to_them() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let client = port.client();
    let (a, b) = (fresh("orders"), fresh("orders"));
    let invoice = fresh("invoices");
    let append = |stream: String, n: usize, kind: &'static str| {
        let client = client.clone();
        async move {
            client
                .append_to_stream(stream.as_str(), &Default::default(), events(n, kind))
                .await
                .unwrap();
        }
    };
    append(a.clone(), 2, "OrderPlaced").await;
    append(invoice.clone(), 1, "OrderPlaced").await;
    append(b.clone(), 1, "OrderShipped").await;
    append(fresh("ordersarchive"), 1, "OrderPlaced").await;
    append(a.clone(), 1, "OrderShipped").await;
    let expected = [
        format!("0@{a}"),
        format!("1@{a}"),
        format!("0@{b}"),
        format!("2@{a}"),
    ];

    // `$ce-orders`: one link per event of the `orders-…` streams, numbered in log order.
    let read = links_of(&client, "$ce-orders", &ReadStreamOptions::default())
        .await
        .unwrap();
    let links: Vec<(u64, String)> = read
        .iter()
        .map(|e| {
            let link = e.event.as_ref().unwrap();
            assert_eq!(link.event_type, "$>");
            assert_eq!(link.stream_id(), "$ce-orders");
            (
                link.revision,
                String::from_utf8(link.data.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        links,
        expected
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u64, d.clone()))
            .collect::<Vec<_>>()
    );
    // Resolved: the events themselves, each with its link.
    let resolved = links_of(
        &client,
        "$ce-orders",
        &ReadStreamOptions::default().resolve_link_tos(),
    )
    .await
    .unwrap();
    let originals = read_stream(&client, a.as_str(), &ReadStreamOptions::default())
        .await
        .unwrap();
    let first = resolved[0].event.as_ref().unwrap();
    assert_eq!((first.stream_id(), first.revision), (a.as_str(), 0));
    assert_eq!(first.id, originals[0].id);
    assert_eq!(first.event_type, "OrderPlaced");
    assert_eq!(resolved[3].link.as_ref().unwrap().revision, 3);
    assert_eq!(
        resolved[3].event.as_ref().unwrap().position,
        originals[2].position
    );
    // Backwards from the end, and forwards from a revision.
    let backwards = links_of(
        &client,
        "$ce-orders",
        &ReadStreamOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(2),
    )
    .await
    .unwrap();
    let revisions: Vec<u64> = backwards
        .iter()
        .map(|e| e.event.as_ref().unwrap().revision)
        .collect();
    assert_eq!(revisions, vec![3, 2]);
    let from_two = links_of(
        &client,
        "$ce-orders",
        &ReadStreamOptions::default().position(StreamPosition::Position(2)),
    )
    .await
    .unwrap();
    assert_eq!(from_two.len(), 2);

    // `$et-OrderPlaced`: every event of that type, whatever its stream.
    let placed = links_of(&client, "$et-OrderPlaced", &ReadStreamOptions::default())
        .await
        .unwrap();
    let data: Vec<String> = placed
        .iter()
        .map(|e| String::from_utf8(e.event.as_ref().unwrap().data.to_vec()).unwrap())
        .collect();
    assert_eq!(data.len(), 4, "{data:?}");
    assert_eq!(&data[..2], &[format!("0@{a}"), format!("1@{a}")]);
    assert_eq!(data[2], format!("0@{invoice}"));
    // A projection stream that links nothing yet is a missing stream.
    let missing = links_of(&client, "$ce-nothing", &ReadStreamOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::ResourceNotFound), "{missing:?}");

    // A subscription catches up, then follows new links as their events are appended.
    let mut subscription = client
        .subscribe_to_stream(
            "$ce-orders",
            &SubscribeToStreamOptions::default()
                .start_from(StreamPosition::Start)
                .resolve_link_tos(),
        )
        .await;
    let mut seen = Vec::new();
    while seen.len() < 6 {
        match tokio::time::timeout(
            Duration::from_secs(30),
            subscription.next_subscription_event(),
        )
        .await
        .expect("the subscription answers")
        .unwrap()
        {
            SubscriptionEvent::EventAppeared(e) => {
                let event = e.event.as_ref().expect("resolved");
                seen.push((event.stream_id().to_owned(), event.revision));
            }
            SubscriptionEvent::CaughtUp(_) => {
                assert_eq!(seen.len(), 4);
                append(invoice.clone(), 1, "OrderPlaced").await;
                append(b.clone(), 2, "OrderShipped").await;
            }
            _ => {}
        }
    }
    assert_eq!(seen[4..], [(b.clone(), 1), (b.clone(), 2)]);

    // Nobody writes a projection's stream; a reader needs the linked category's grant.
    let head = app.log.head_position().await.unwrap();
    for who in [None, Some(("root", "root-pw"))] {
        let refused = port
            .client_as(who)
            .append_to_stream("$ce-orders", &Default::default(), events(1, "A"))
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::AccessDenied), "{refused:?}");
    }
    assert_eq!(app.log.head_position().await.unwrap(), head);
    let clerk = port.client_as(Some(("clerk", "clerk-pw")));
    assert_eq!(
        links_of(&clerk, "$ce-invoices", &ReadStreamOptions::default())
            .await
            .unwrap()
            .len(),
        2
    );
    for denied_stream in ["$ce-orders", "$et-OrderPlaced"] {
        let refused = links_of(&clerk, denied_stream, &ReadStreamOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, Error::AccessDenied),
            "{denied_stream}: {refused:?}"
        );
    }
}
