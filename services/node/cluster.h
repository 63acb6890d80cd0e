// Internal: a node's part in a cluster (docs/cluster.md) — the pattern registry and the shard maps
// in JetStream key-value buckets on the node's NATS server.
//
// Registry (bucket `registry_bucket`, memory storage, TTL = ttl_ms): one key per running node,
// `node.<name escaped>.<instance>`, value {"node":"…","patterns":[…],"at":ms}. The node puts it at
// start and every ttl_ms/3; deletes it on a graceful stop. Every node watches the bucket: a key
// not refreshed for ttl_ms (a killed node) is dropped locally even before the bucket's TTL removes
// it. `routes_changed` is called (on the agent's thread) whenever the set of patterns served by
// other nodes changes; the node then rebuilds its routing table.
//
// Shard maps (bucket `maps_bucket`, file storage, no TTL): key `map.<name>` holds
// {"epoch":N,"ranges":[…]}. AttachShardMaps makes the KV the authority of every shard map of the
// process: the first node seeds the key; a newer map in the KV replaces the local one; every
// CompareAndSwap of a holder (the shard-map service's shardmap:set, a migration's cutover) is
// committed with kvStore_Update at the revision last seen, so two writers cannot both win; and
// every node sees a new epoch through its watch.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nats_link.h"
#include "shardkit/services/config.h"

namespace shardkit::services {

class ClusterAgent {
 public:
  // Connects to config.nats, opens (or creates) both buckets and starts watching. `unavailable`
  // naming cluster.nats when the server cannot be reached or has no JetStream.
  static Result<std::unique_ptr<ClusterAgent>> Start(const ClusterConfig& config,
                                                     const std::string& node_name,
                                                     std::function<void()> routes_changed);
  ~ClusterAgent();

  const std::shared_ptr<NatsLink>& link() const;
  // Waits until the registry's keys present at start were read (false after `timeout`).
  bool WaitForRegistry(std::chrono::milliseconds timeout);
  // Publishes the patterns this node serves (its registry key).
  Status Announce(std::vector<std::string> patterns);
  // Canonical patterns served by other nodes -> the names of those nodes.
  std::map<std::string, std::set<std::string>> RemotePatterns() const;
  // Makes the KV the authority of the process's shard maps (see above). Idempotent.
  Status AttachShardMaps();
  // Deletes this node's key so no router sends it new requests. Idempotent.
  void Leave();

  class Impl;

 private:
  explicit ClusterAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardkit::services
