// The CPU an idle node spends: a node with the services that run background work (a RocksDB store
// and its change feed, a cache following that feed, a command log with its applier, a projection),
// started in this process and left without traffic.
#pragma once

namespace shardkit::bench {

// Percent of one core that this process used over `seconds` of wall time while the idle node
// was its only activity (utime + stime from /proc/self/stat). Throws std::runtime_error if the
// node cannot start.
double MeasureIdleNodeCpuPercent(double seconds);

}  // namespace shardkit::bench
