// RemoteStore: a migration's source or target store served by another node, reached over TCP
// with the replication protocol (store/replication.h). It is an EntityStore so the migration
// treats it as it treats a local one; it answers only what a migration asks of a participant
// (apply a batch, the applied positions, the claim, the feed, its records and its consumers, a
// scan of a range) and its shard's write gate there. Client data calls are refused: clients reach
// that store through its own node.
//
// Copy batches (assume_absent, no position) are sent with up to `window` in flight, so the copy
// is not bound by one round trip per batch; any other apply first waits for them, so a recorded
// position always covers every batch sent before it.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "shardkit/services/client.h"
#include "shardkit/shard/write_gate.h"
#include "shardkit/store/entity_store.h"

namespace shardkit::services {

struct RemoteStoreOptions {
  // The node serving the store: tcp://host:port, or a cluster's nats://host:port (the request
  // goes to whichever node of the cluster serves the shard)
  std::string node;
  std::string shard;            // the store's canonical shard name there
  std::string role = "target";  // "source" or "target": how errors name the store
  std::chrono::milliseconds timeout{30'000};
  // The bound of a feed-position query: a cutover asks it with the source's gates closed, so an
  // unreachable target must count as unreachable well within the routers' timeouts.
  std::chrono::milliseconds position_timeout{2'000};
  size_t window = 4;  // copy batches in flight
};

// The store, and the write gate of its shard on its node (a source's cutover and a target's
// rollback close it there).
struct RemoteTarget {
  std::shared_ptr<store::EntityStore> store;
  std::shared_ptr<shard::WriteGate> gate;
  std::string process;  // the boot id of the process whose guard answered, empty if none did
};

// Connects, asks the store's replication state once and its shard's gate state (for `process`):
// `invalid` naming the role, the shard and the node when the node cannot be reached or serves no
// such store.
Result<RemoteTarget> OpenRemoteStore(RemoteStoreOptions options);

}  // namespace shardkit::services
