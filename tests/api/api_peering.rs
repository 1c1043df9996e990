//! The `Peering` service (CiviShare administration over gRPC) against the real server: every
//! call needs `peers:admin`; a peering added without a secret answers the generated one once,
//! is listed and reported without it, keeps it sealed in every file, and goes with its key;
//! bad input names its field and rule and changes nothing.
use crate::support;

use ledger::proto::api;
use ledger::proto::api::peering_client::PeeringClient;
use support::api::*;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

async fn client(app: &TestApp) -> PeeringClient<Channel> {
    PeeringClient::connect(format!("http://127.0.0.1:{}", app.port))
        .await
        .unwrap()
}

/// An `AddPeer` request for `node` at `url`, sending and accepting every change type.
fn add(node: &str, url: &str) -> api::AddPeerRequest {
    api::AddPeerRequest {
        node: node.into(),
        url: url.into(),
        outgoing: vec!["all".into()],
        incoming: vec!["all".into()],
        secret: String::new(),
        history: false,
    }
}

/// Each call once with `token` (none when `None`); the status codes.
async fn codes(app: &TestApp, token: Option<&str>) -> Vec<(&'static str, Code)> {
    fn with<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
        match token {
            Some(t) => with_token(msg, t),
            None => tonic::Request::new(msg),
        }
    }
    let mut c = client(app).await;
    let code = |r: Result<(), tonic::Status>| r.map_or_else(|s| s.code(), |()| Code::Ok);
    vec![
        (
            "GetLocalNode",
            code(
                c.get_local_node(with(api::GetLocalNodeRequest {}, token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "SetLocalNode",
            code(
                c.set_local_node(with(
                    api::SetLocalNodeRequest {
                        name: "https://a.example.org".into(),
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
        (
            "AddPeer",
            code(
                c.add_peer(with(add("https://b.example.org", "http://b/m"), token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "ListPeers",
            code(
                c.list_peers(with(api::ListPeersRequest {}, token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "GetPeerStatus",
            code(
                c.get_peer_status(with(api::GetPeerStatusRequest {}, token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "RemovePeer",
            code(
                c.remove_peer(with(
                    api::RemovePeerRequest {
                        node: "https://b.example.org".into(),
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
    ]
}

#[tokio::test]
async fn every_peering_call_needs_peers_admin() {
    let app = spawn_app().await;
    for (token, expected) in [
        (None, Code::Unauthenticated),
        (Some("no-such-token"), Code::Unauthenticated),
        (Some(FORM), Code::PermissionDenied),
        (Some(PROVIDER), Code::PermissionDenied),
    ] {
        for (call, code) in codes(&app, token).await {
            assert_eq!(code, expected, "{call} with {token:?}");
        }
    }
    assert!(
        client(&app)
            .await
            .list_peers(with_token(api::ListPeersRequest {}, ADMIN))
            .await
            .unwrap()
            .into_inner()
            .peers
            .is_empty(),
        "a refused AddPeer added nothing"
    );
    // The admin token (every scope) passes each, in order: name, add, list, status, remove.
    for (call, code) in codes(&app, Some(ADMIN)).await {
        assert_eq!(code, Code::Ok, "{call} as admin");
    }
}

#[tokio::test]
async fn a_peering_added_over_grpc_shows_its_secret_once_and_goes_with_its_key() {
    let app = spawn_app().await;
    let mut c = client(&app).await;
    let node = c
        .set_local_node(with_token(
            api::SetLocalNodeRequest {
                name: "https://ledger-a.example.org".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(node.name, "https://ledger-a.example.org");
    let added = c
        .add_peer(with_token(
            api::AddPeerRequest {
                outgoing: vec!["ledger.change.donation.created".into()],
                incoming: vec![],
                ..add(
                    "https://ledger-b.example.org",
                    "https://ledger-b.example.org/civishare/v1/messages",
                )
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let secret = added.generated_secret.clone();
    assert_eq!(secret.len(), 43, "a generated secret: {secret:?}");
    let peer = added.peer.unwrap();
    assert_eq!(peer.outgoing, ["ledger.change.donation.created"]);
    assert!(peer.incoming.is_empty(), "nothing accepted from it");

    let listed = c
        .list_peers(with_token(api::ListPeersRequest {}, ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.local_node, "https://ledger-a.example.org");
    assert_eq!(listed.peers, [peer]);
    let status = c
        .get_peer_status(with_token(api::GetPeerStatusRequest {}, ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.peers.len(), 1);
    assert_eq!(status.peers[0].node, "https://ledger-b.example.org");
    assert_eq!(status.peers[0].undelivered, 0);
    assert!(!format!("{listed:?}{status:?}").contains(&secret));
    // Sealed: the secret is in no file of the data directory in clear.
    for (path, bytes) in support::read_dir_bytes(app.dir.path()) {
        assert!(
            !support::contains(&bytes, secret.as_bytes()),
            "the secret in clear in {}",
            path.display()
        );
    }

    // A peering with the same node again is refused; removed, it is gone, and a second
    // removal finds nothing.
    let again = c
        .add_peer(with_token(
            add("https://ledger-b.example.org", "http://b/m"),
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    // A peered node keeps its name (its peers know it by it); the same name again is fine.
    let name = |name: &str| {
        with_token(
            api::SetLocalNodeRequest {
                name: name.to_owned(),
            },
            ADMIN,
        )
    };
    let renamed = c
        .set_local_node(name("https://ledger-z.example.org"))
        .await
        .unwrap_err();
    assert_eq!(renamed.code(), Code::FailedPrecondition, "{renamed:?}");
    assert!(
        renamed.message().contains("remove the peerings first"),
        "{renamed:?}"
    );
    c.set_local_node(name("https://ledger-a.example.org"))
        .await
        .unwrap();
    let remove = || {
        with_token(
            api::RemovePeerRequest {
                node: "https://ledger-b.example.org".into(),
            },
            ADMIN,
        )
    };
    c.remove_peer(remove()).await.unwrap();
    let gone = c.remove_peer(remove()).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let listed = c
        .list_peers(with_token(api::ListPeersRequest {}, ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.peers.is_empty());
    assert_eq!(listed.local_node, "https://ledger-a.example.org");
    // Without peerings it may be renamed.
    c.set_local_node(name("https://ledger-z.example.org"))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_peering_input_names_its_field_and_rule_and_changes_nothing() {
    let app = spawn_app().await;
    let mut c = client(&app).await;
    let good = || add("https://ledger-b.example.org", "http://b/m");
    let cases: Vec<(api::AddPeerRequest, &str, &str)> = vec![
        (
            api::AddPeerRequest {
                url: "ftp://b/m".into(),
                ..good()
            },
            "url",
            "http:// or https://",
        ),
        (
            api::AddPeerRequest {
                node: "has space".into(),
                ..good()
            },
            "node",
            "printable ASCII",
        ),
        (
            api::AddPeerRequest {
                outgoing: vec!["civishare.change.nonsense".into()],
                ..good()
            },
            "outgoing",
            "not a change type",
        ),
        (
            api::AddPeerRequest {
                incoming: vec!["all,all".into()],
                ..good()
            },
            "incoming",
            "no commas",
        ),
        (
            api::AddPeerRequest {
                secret: "short".into(),
                ..good()
            },
            "secret",
            "at least 32",
        ),
    ];
    for (request, field, rule) in cases {
        let err = c.add_peer(with_token(request, ADMIN)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let violations = err.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, field, "{violations:?}");
        assert!(violations[0].description.contains(rule), "{violations:?}");
    }
    let err = c
        .set_local_node(with_token(
            api::SetLocalNodeRequest {
                name: String::new(),
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.get_details_bad_request().unwrap().field_violations[0].field,
        "name"
    );
    let listed = c
        .list_peers(with_token(api::ListPeersRequest {}, ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.peers.is_empty() && listed.local_node.is_empty());
    assert_eq!(head(&app.log).await, 0, "nothing appended");
}
