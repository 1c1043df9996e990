//! What clients ask a server about itself: its version and methods (`ServerFeatures`), the
//! cluster (`Gossip`, answered as one alive leader: this node), and persistent subscriptions
//! (`List`, answered as a server that has none; every other persistent-subscription method is
//! UNIMPLEMENTED, as it is absent from the service).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{convert, Port, SERVER_VERSION};
use crate::proto::kurrentdb::event_store::client::gossip::{
    gossip_server::Gossip, member_info::VNodeState, ClusterInfo, EndPoint, MemberInfo,
};
use crate::proto::kurrentdb::event_store::client::persistent_subscriptions::{
    persistent_subscriptions_server::PersistentSubscriptions, ListReq, ListResp,
};
use crate::proto::kurrentdb::event_store::client::server_features::{
    server_features_server::ServerFeatures, SupportedMethod, SupportedMethods,
};
use crate::proto::kurrentdb::event_store::client::Empty;

/// The three informational services.
#[derive(Clone)]
pub struct Cluster {
    pub(super) port: Arc<Port>,
}

/// The methods the port answers, as `(service, method)` in the lower case clients match.
const METHODS: &[(&str, &str)] = &[
    ("event_store.client.streams.streams", "read"),
    ("event_store.client.streams.streams", "append"),
    ("event_store.client.streams.streams", "batchappend"),
    ("event_store.client.streams.streams", "delete"),
    ("event_store.client.streams.streams", "tombstone"),
    (
        "kurrentdb.protocol.v2.streams.streamsservice",
        "appendsession",
    ),
    ("event_store.client.gossip.gossip", "read"),
    (
        "event_store.client.server_features.serverfeatures",
        "getsupportedmethods",
    ),
    (
        "event_store.client.persistent_subscriptions.persistentsubscriptions",
        "list",
    ),
];

#[tonic::async_trait]
impl ServerFeatures for Cluster {
    async fn get_supported_methods(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<SupportedMethods>, Status> {
        self.port.called("GetSupportedMethods");
        Ok(Response::new(SupportedMethods {
            methods: METHODS
                .iter()
                .map(|(service, method)| SupportedMethod {
                    method_name: (*method).to_owned(),
                    service_name: (*service).to_owned(),
                    features: Vec::new(),
                })
                .collect(),
            event_store_server_version: SERVER_VERSION.to_owned(),
        }))
    }
}

#[tonic::async_trait]
impl Gossip for Cluster {
    async fn read(&self, _request: Request<Empty>) -> Result<Response<ClusterInfo>, Status> {
        self.port.called("Gossip.Read");
        let (host, port) = &self.port.advertise;
        Ok(Response::new(ClusterInfo {
            members: vec![MemberInfo {
                instance_id: Some(convert::uuid_message(self.port.instance, false)),
                time_stamp: convert::ticks(chrono::Utc::now()),
                state: VNodeState::Leader as i32,
                is_alive: true,
                http_end_point: Some(EndPoint {
                    address: host.clone(),
                    port: u32::from(*port),
                }),
            }],
        }))
    }
}

#[tonic::async_trait]
impl PersistentSubscriptions for Cluster {
    async fn list(&self, _request: Request<ListReq>) -> Result<Response<ListResp>, Status> {
        self.port.called("PersistentSubscriptions.List");
        Ok(Response::new(ListResp {}))
    }
}
