// The CPU an idle node spends: a node with the services that run background work (RocksDB stores
// and their change feeds, a cache, a command log with its applier, a projection), started in this
// process and left without traffic.
#pragma once

#include <string>

namespace shardkit::bench {

// Percent of one core that this process used over `seconds` of wall time while the idle node
// was its only activity (utime + stime from /proc/self/stat). With `nats_url` (a server with
// JetStream) the node also listens on NATS and joins a cluster there. Throws std::runtime_error if
// the node cannot start.
double MeasureIdleNodeCpuPercent(double seconds, const std::string& nats_url = {});

}  // namespace shardkit::bench
