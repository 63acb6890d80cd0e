// patrun, the pattern matcher of Seneca (Node.js), timed on the same pattern sets and messages as
// `shardkit bench router`'s matcher, in slices interleaved with it (tests/seneca/patrun_bench.js).
#pragma once

#include <memory>
#include <string>

namespace shardkit::bench {

// A `node <script> <fixture>` child that times patrun's find on request.
class PatrunMatcher {
 public:
  // Starts the child; nullptr (with the reason on stderr) when node, the script or its npm
  // packages are missing, so the figures become null instead of failing the benchmark.
  static std::unique_ptr<PatrunMatcher> Start(const std::string& script,
                                              const std::string& fixture_path);
  ~PatrunMatcher();
  // Finds per second of CPU time over `seconds` of it on the set of `patterns` patterns; 0 if
  // the child failed.
  double Slice(int patterns, double seconds);

 private:
  PatrunMatcher(int pid, int to, int from) : pid_(pid), to_(to), from_(from) {}
  std::string ReadLine();  // empty when the child died
  int pid_;
  int to_;    // the child's stdin
  int from_;  // the child's stdout
};

}  // namespace shardkit::bench
