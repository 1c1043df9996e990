//! gRPC server reflection, versions `v1` and `v1alpha`, answering as the reflection protocol
//! asks: a file comes with every file it depends on (transitively, minus those already sent on
//! the same stream), a symbol anywhere in a file finds it, every served service is listed
//! (health and reflection too), and a lookup that fails answers an `ErrorResponse` on the stream
//! instead of ending it. Clients that build their message types from the replies (Python's
//! `grpcio-reflection`, Postman-style tools, grpcurl) need all of that.
//!
//! The two protocol versions carry identical messages in different packages; the lookups live
//! in [`Catalog`] once and a macro writes the two thin service adapters.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::{Request, Response, Status, Streaming};

/// What a reflection request asks for, independent of the protocol version.
enum Query {
    FileByName(String),
    FileContainingSymbol(String),
    FileContainingExtension(String, i32),
    ExtensionNumbers(String),
    ListServices,
}

/// The answer to a [`Query`], independent of the protocol version.
enum Answer {
    Files(Vec<Vec<u8>>),
    ExtensionNumbers(String),
    Services(Vec<String>),
    Error(tonic::Code, String),
}

/// Every file descriptor the server knows, indexed by file name and by fully qualified symbol.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Encoded descriptor and direct dependencies, by file name.
    files: HashMap<String, (Vec<u8>, Vec<String>)>,
    /// File name by fully qualified symbol (messages, fields, enums, values, services, methods).
    symbols: HashMap<String, String>,
    /// Fully qualified names of the services this server answers.
    services: Vec<String>,
}

impl Catalog {
    /// The catalog of the ledger's intake: its own schemas (with the well-known types they
    /// import), health, and both reflection versions.
    pub fn ledger() -> anyhow::Result<Self> {
        let mut catalog = Self::default();
        for encoded in [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            catalog.add(&FileDescriptorSet::decode(encoded)?);
        }
        let missing: Vec<String> = catalog
            .files
            .iter()
            .flat_map(|(name, (_, deps))| deps.iter().map(move |d| (name, d)))
            .filter(|(_, dep)| !catalog.files.contains_key(*dep))
            .map(|(name, dep)| format!("{name} imports {dep}"))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "reflection catalog incomplete: {}",
            missing.join(", ")
        );
        catalog.services.sort();
        Ok(catalog)
    }

    fn add(&mut self, set: &FileDescriptorSet) {
        for file in &set.file {
            let name = file.name().to_owned();
            if self.files.contains_key(&name) {
                continue;
            }
            let package = file.package();
            for message in &file.message_type {
                self.add_message(&name, package, message);
            }
            for e in &file.enum_type {
                self.add_enum(&name, package, e);
            }
            for service in &file.service {
                let service_name = qualified(package, service.name());
                for method in &service.method {
                    self.symbols
                        .insert(qualified(&service_name, method.name()), name.clone());
                }
                self.symbols.insert(service_name.clone(), name.clone());
                self.services.push(service_name);
            }
            self.files
                .insert(name, (file.encode_to_vec(), file.dependency.clone()));
        }
    }

    fn add_message(&mut self, file: &str, scope: &str, message: &DescriptorProto) {
        let name = qualified(scope, message.name());
        for field in &message.field {
            self.symbols
                .insert(qualified(&name, field.name()), file.to_owned());
        }
        for oneof in &message.oneof_decl {
            self.symbols
                .insert(qualified(&name, oneof.name()), file.to_owned());
        }
        for nested in &message.nested_type {
            self.add_message(file, &name, nested);
        }
        for e in &message.enum_type {
            self.add_enum(file, &name, e);
        }
        self.symbols.insert(name, file.to_owned());
    }

    fn add_enum(&mut self, file: &str, scope: &str, e: &prost_types::EnumDescriptorProto) {
        let name = qualified(scope, e.name());
        for value in &e.value {
            // Enum values are scoped like their enum's siblings (C++ scoping rules).
            self.symbols
                .insert(qualified(scope, value.name()), file.to_owned());
            self.symbols
                .insert(qualified(&name, value.name()), file.to_owned());
        }
        self.symbols.insert(name, file.to_owned());
    }

    /// The fully qualified names of the services served.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// `file` followed by its transitive dependencies that `sent` does not hold yet; every file
    /// returned is added to `sent`. The requested file is always included.
    fn file_with_dependencies(&self, file: &str, sent: &mut HashSet<String>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut stack = vec![file.to_owned()];
        let mut first = true;
        while let Some(name) = stack.pop() {
            if !first && sent.contains(&name) {
                continue;
            }
            first = false;
            let Some((bytes, deps)) = self.files.get(&name) else {
                continue;
            };
            sent.insert(name);
            out.push(bytes.clone());
            stack.extend(deps.iter().rev().cloned());
        }
        out
    }

    fn answer(&self, query: Query, sent: &mut HashSet<String>) -> Answer {
        match query {
            Query::FileByName(name) => {
                if self.files.contains_key(&name) {
                    Answer::Files(self.file_with_dependencies(&name, sent))
                } else {
                    Answer::Error(tonic::Code::NotFound, format!("file {name:?} not found"))
                }
            }
            Query::FileContainingSymbol(symbol) => {
                let symbol = symbol.trim_start_matches('.');
                match self.symbols.get(symbol) {
                    Some(file) => Answer::Files(self.file_with_dependencies(file, sent)),
                    None => Answer::Error(
                        tonic::Code::NotFound,
                        format!("symbol {symbol:?} not found"),
                    ),
                }
            }
            Query::FileContainingExtension(containing, number) => Answer::Error(
                tonic::Code::NotFound,
                format!("no extension {number} of {containing:?}: the schemas declare none"),
            ),
            Query::ExtensionNumbers(message) => {
                if self.symbols.contains_key(message.trim_start_matches('.')) {
                    Answer::ExtensionNumbers(message)
                } else {
                    Answer::Error(
                        tonic::Code::NotFound,
                        format!("message {message:?} not found"),
                    )
                }
            }
            Query::ListServices => Answer::Services(self.services.clone()),
        }
    }
}

fn qualified(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

/// A boxed response stream.
type Replies<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Writes one protocol version's service over [`Catalog`]; the versions differ only in the
/// package their generated types live in.
macro_rules! reflection_version {
    ($service:ident, $pb:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $service {
            catalog: Arc<Catalog>,
        }

        impl $service {
            /// A service answering from `catalog`.
            pub fn new(catalog: Arc<Catalog>) -> Self {
                Self { catalog }
            }

            /// The tonic server wrapping this service.
            pub fn into_server(
                self,
            ) -> tonic_reflection::pb::$pb::server_reflection_server::ServerReflectionServer<Self>
            {
                tonic_reflection::pb::$pb::server_reflection_server::ServerReflectionServer::new(
                    self,
                )
            }
        }

        #[tonic::async_trait]
        impl tonic_reflection::pb::$pb::server_reflection_server::ServerReflection for $service {
            type ServerReflectionInfoStream =
                Replies<tonic_reflection::pb::$pb::ServerReflectionResponse>;

            async fn server_reflection_info(
                &self,
                request: Request<Streaming<tonic_reflection::pb::$pb::ServerReflectionRequest>>,
            ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
                use pb::server_reflection_request::MessageRequest as Req;
                use pb::server_reflection_response::MessageResponse as Resp;
                use tonic_reflection::pb::$pb as pb;
                let catalog = self.catalog.clone();
                let mut sent = HashSet::new();
                let replies = request.into_inner().map(move |request| {
                    let request = request?;
                    let query = match request.message_request.clone() {
                        Some(Req::FileByFilename(name)) => Some(Query::FileByName(name)),
                        Some(Req::FileContainingSymbol(s)) => Some(Query::FileContainingSymbol(s)),
                        Some(Req::FileContainingExtension(e)) => Some(
                            Query::FileContainingExtension(e.containing_type, e.extension_number),
                        ),
                        Some(Req::AllExtensionNumbersOfType(m)) => Some(Query::ExtensionNumbers(m)),
                        Some(Req::ListServices(_)) => Some(Query::ListServices),
                        None => None,
                    };
                    let answer = match query {
                        Some(query) => catalog.answer(query, &mut sent),
                        None => Answer::Error(
                            tonic::Code::InvalidArgument,
                            "message_request: required, one of the five lookups".to_owned(),
                        ),
                    };
                    let response = match answer {
                        Answer::Files(files) => {
                            Resp::FileDescriptorResponse(pb::FileDescriptorResponse {
                                file_descriptor_proto: files,
                            })
                        }
                        Answer::ExtensionNumbers(message) => {
                            Resp::AllExtensionNumbersResponse(pb::ExtensionNumberResponse {
                                base_type_name: message,
                                extension_number: Vec::new(),
                            })
                        }
                        Answer::Services(names) => {
                            Resp::ListServicesResponse(pb::ListServiceResponse {
                                service: names
                                    .into_iter()
                                    .map(|name| pb::ServiceResponse { name })
                                    .collect(),
                            })
                        }
                        Answer::Error(code, message) => Resp::ErrorResponse(pb::ErrorResponse {
                            error_code: code as i32,
                            error_message: message,
                        }),
                    };
                    Ok(pb::ServerReflectionResponse {
                        valid_host: request.host.clone(),
                        original_request: Some(request),
                        message_response: Some(response),
                    })
                });
                Ok(Response::new(Box::pin(replies)))
            }
        }
    };
}

reflection_version!(
    ReflectionV1,
    v1,
    "Reflection `grpc.reflection.v1.ServerReflection`."
);
reflection_version!(
    ReflectionV1Alpha,
    v1alpha,
    "Reflection `grpc.reflection.v1alpha.ServerReflection`, for older clients."
);

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::FileDescriptorProto;

    fn names(catalog: &Catalog, files: &[Vec<u8>]) -> Vec<String> {
        let _ = catalog;
        files
            .iter()
            .map(|f| {
                FileDescriptorProto::decode(f.as_slice())
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_catalog_holds_every_file_the_schemas_import() {
        let catalog = Catalog::ledger().unwrap();
        assert!(catalog
            .files
            .contains_key("google/protobuf/timestamp.proto"));
        assert!(catalog.files.contains_key("ledger/events/v1/events.proto"));
    }

    #[test]
    fn a_symbol_lookup_returns_its_file_then_each_dependency_once_per_stream() {
        let catalog = Catalog::ledger().unwrap();
        let mut sent = HashSet::new();
        let Answer::Files(files) = catalog.answer(
            Query::FileContainingSymbol("ledger.api.v1.Ledger".into()),
            &mut sent,
        ) else {
            panic!("expected files");
        };
        let got = names(&catalog, &files);
        assert_eq!(got[0], "ledger/api/v1/ledger.proto");
        assert!(got.contains(&"google/protobuf/timestamp.proto".to_owned()));
        assert!(got.contains(&"ledger/events/v1/events.proto".to_owned()));
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "no file twice: {got:?}");

        // Asked again on the same stream: the file itself, its dependencies already known.
        let Answer::Files(again) = catalog.answer(
            Query::FileContainingSymbol(".ledger.api.v1.AddDonationRequest".into()),
            &mut sent,
        ) else {
            panic!("expected files");
        };
        assert_eq!(names(&catalog, &again), ["ledger/api/v1/ledger.proto"]);
    }

    #[test]
    fn fields_methods_and_enum_values_are_symbols_too() {
        let catalog = Catalog::ledger().unwrap();
        for symbol in [
            "ledger.api.v1.Ledger.AddDonation",
            "ledger.api.v1.AddDonationRequest.context",
            "grpc.health.v1.HealthCheckResponse.SERVING",
        ] {
            assert!(catalog.symbols.contains_key(symbol), "{symbol}");
        }
    }

    #[test]
    fn health_and_both_reflection_versions_are_listed_beside_the_ledger() {
        let catalog = Catalog::ledger().unwrap();
        for service in [
            "ledger.api.v1.Ledger",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(catalog.services().iter().any(|s| s == service), "{service}");
        }
    }

    #[test]
    fn an_unknown_symbol_is_an_error_answer_not_the_end_of_the_stream() {
        let catalog = Catalog::ledger().unwrap();
        let answer = catalog.answer(
            Query::FileContainingSymbol("no.such.Thing".into()),
            &mut HashSet::new(),
        );
        assert!(
            matches!(answer, Answer::Error(tonic::Code::NotFound, ref m) if m.contains("no.such.Thing"))
        );
    }
}
