// Lag reporting: every applier and projection tells how far it has got, and `cqrs:status` answers
// with all of them.
//
//   cqrs:status [name:N]  -> {"items":[{"name":"…","role":"applier|projection","applied":A,
//                             "head":H,"lag":H-A,"errors":E,"dead_letters":D},…]}
// `name` filters to one component (not_found if none has it).
//
// Thread-safety: Lag() may be called from any thread; the service too.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <shardkit/message/handler.h>

namespace shardkit::cqrs {

struct LagInfo {
  std::string name;
  std::string role;      // "applier" or "projection"
  uint64_t applied = 0;  // every position <= applied is done
  uint64_t head = 0;     // the last position of its source
  uint64_t errors = 0;   // failed attempts (applier) / events the projection could not apply
  uint64_t dead_letters = 0;
  uint64_t lag() const { return head > applied ? head - applied : 0; }
};

class LagSource {
 public:
  virtual ~LagSource() = default;
  virtual LagInfo Lag() const = 0;
};

std::shared_ptr<Handler> MakeStatusService(std::vector<std::shared_ptr<const LagSource>> sources);

}  // namespace shardkit::cqrs
