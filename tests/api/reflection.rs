//! Reflection v1 on the wire (v1alpha is driven by Python's client in `tests/cli`): every
//! served service listed, a symbol's file sent with the files it imports, and a failed lookup
//! answered on the stream, which stays open for the next question.
use crate::support::api::spawn_app;

use prost::Message;
use prost_types::FileDescriptorProto;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

/// Sends `requests` on one reflection stream and collects the answers.
async fn ask(port: u16, requests: Vec<MessageRequest>) -> Vec<MessageResponse> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let outgoing = tokio_stream::iter(requests.into_iter().map(|r| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r),
    }));
    let mut replies = client
        .server_reflection_info(outgoing)
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(reply) = replies.message().await.unwrap() {
        out.push(reply.message_response.unwrap());
    }
    out
}

fn file_names(response: &MessageResponse) -> Vec<String> {
    let MessageResponse::FileDescriptorResponse(files) = response else {
        panic!("expected files, got {response:?}");
    };
    files
        .file_descriptor_proto
        .iter()
        .map(|f| {
            FileDescriptorProto::decode(f.as_slice())
                .unwrap()
                .name()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn reflection_v1_lists_services_sends_dependencies_and_survives_a_failed_lookup() {
    let app = spawn_app().await;
    let answers = ask(
        app.port,
        vec![
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("no.such.Symbol".into()),
            MessageRequest::FileContainingSymbol("ledger.api.v1.Ledger.AddDonation".into()),
            MessageRequest::FileByFilename("ledger/events/v1/events.proto".into()),
        ],
    )
    .await;
    assert_eq!(answers.len(), 4, "{answers:?}");

    let MessageResponse::ListServicesResponse(list) = &answers[0] else {
        panic!("{:?}", answers[0]);
    };
    let services: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "ledger.api.v1.Ledger",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.contains(&expected),
            "{expected} not in {services:?}"
        );
    }

    let MessageResponse::ErrorResponse(error) = &answers[1] else {
        panic!("{:?}", answers[1]);
    };
    assert_eq!(error.error_code, tonic::Code::NotFound as i32);
    assert!(error.error_message.contains("no.such.Symbol"));

    let files = file_names(&answers[2]);
    assert_eq!(files[0], "ledger/api/v1/ledger.proto");
    for dependency in [
        "google/protobuf/timestamp.proto",
        "ledger/events/v1/events.proto",
    ] {
        assert!(files.iter().any(|f| f == dependency), "{files:?}");
    }
    // Already sent on this stream: the file alone, without repeating its imports.
    assert_eq!(file_names(&answers[3]), ["ledger/events/v1/events.proto"]);
}
