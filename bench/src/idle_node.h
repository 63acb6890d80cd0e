// The CPU an idle node spends: a node with the services that run background work (RocksDB stores
// and their change feeds, a cache, a command log with its applier, a projection), started in this
// process and left without traffic.
#pragma once

namespace shardkit::bench {

// Percent of one core that this process used over `seconds` of wall time while the idle node
// was its only activity (utime + stime from /proc/self/stat). Throws std::runtime_error if the
// node cannot start.
double MeasureIdleNodeCpuPercent(double seconds);

}  // namespace shardkit::bench
