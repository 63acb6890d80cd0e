// A linearizability checker for per-key register histories, after Porcupine (Athalye) and the
// Wing–Gong–Lowe search: given the operations clients saw on one key — each with the time it was
// called, the time its reply came and what it returned — is there one total order of them that
// respects real time (an operation that returned before another was called comes first) and in
// which every load returns the value of the latest save before it (or not-found after a remove)?
//
// An operation whose outcome the client does not know (the request timed out, the connection
// broke, the process was killed) is given a return time of +infinity: it may have taken effect at
// any moment after its call, or never (linearised after everything, it affects nothing observed).
// Loads with an unknown outcome observe nothing and are dropped. So are unknown-outcome writes
// that nothing could have observed — a save whose value no load returned, a remove with no load of
// absence returning after its call: placed "never" they change no verdict, and kept they make the
// search exponential in their number (clients of a node that is down produce hundreds of them).
//
// The search is depth-first with a cache of (set of linearised operations, register value)
// states already explored, which keeps register histories of a few hundred operations per key
// fast. Header-only; used by the live-migration tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace shardkit::migrate::testing {

struct RegisterOp {
  enum class Kind { kSave, kLoad, kRemove };
  Kind kind = Kind::kLoad;
  int64_t call = 0;  // any monotonic clock, same for every client
  int64_t ret = kUnknown;
  // kSave: the value written. kLoad: the value read, nullopt for not-found.
  std::optional<std::string> value;
  static constexpr int64_t kUnknown = std::numeric_limits<int64_t>::max();
};

struct LinearizabilityResult {
  bool ok = true;
  size_t operations = 0;  // checked (unknown loads dropped)
  size_t states_explored = 0;
  std::string explanation;  // when !ok: the history around the failure
};

namespace detail {

inline std::string Describe(const RegisterOp& op) {
  std::string out = op.kind == RegisterOp::Kind::kSave     ? "save("
                    : op.kind == RegisterOp::Kind::kRemove ? "remove("
                                                           : "load->(";
  out += op.value ? *op.value : std::string("absent");
  out += ") [" + std::to_string(op.call) + ", " +
         (op.ret == RegisterOp::kUnknown ? std::string("?") : std::to_string(op.ret)) + "]";
  return out;
}

}  // namespace detail

// Checks one key's history, starting from `initial` (nullopt: absent). A search that explores more
// than `max_states` states gives up: not ok, saying so (a bound on time and memory, not a verdict).
inline LinearizabilityResult CheckRegister(std::vector<RegisterOp> history,
                                           std::optional<std::string> initial,
                                           size_t max_states = 2'000'000) {
  LinearizabilityResult result;
  std::unordered_set<std::string> observed;  // values some load returned
  int64_t last_absent_return = std::numeric_limits<int64_t>::min();
  for (const auto& op : history) {
    if (op.kind != RegisterOp::Kind::kLoad || op.ret == RegisterOp::kUnknown) continue;
    if (op.value) {
      observed.insert(*op.value);
    } else {
      last_absent_return = std::max(last_absent_return, op.ret);
    }
  }
  std::vector<RegisterOp> ops;
  for (auto& op : history) {
    if (op.ret == RegisterOp::kUnknown) {
      if (op.kind == RegisterOp::Kind::kLoad) continue;
      if (op.kind == RegisterOp::Kind::kSave && op.value && observed.count(*op.value) == 0)
        continue;
      if (op.kind == RegisterOp::Kind::kRemove && last_absent_return < op.call) continue;
    }
    ops.push_back(std::move(op));
  }
  result.operations = ops.size();
  const size_t n = ops.size();
  if (n == 0) return result;

  // Events: a call and a return per operation, in time order; at equal times calls come first
  // (operations touching at an instant are treated as concurrent, the permissive reading).
  struct Event {
    int64_t time;
    bool is_call;
    size_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    events.push_back({ops[i].call, true, i});
    events.push_back({ops[i].ret, false, i});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    return a.is_call && !b.is_call;
  });
  // A doubly linked list over the events, with a head sentinel at index 2n.
  const size_t head = events.size();
  std::vector<size_t> next(events.size() + 1), prev(events.size() + 1);
  std::vector<size_t> call_of(n), return_of(n);
  for (size_t i = 0; i < events.size(); ++i) {
    (events[i].is_call ? call_of : return_of)[events[i].op] = i;
  }
  const size_t kEnd = std::numeric_limits<size_t>::max();
  next[head] = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    prev[i] = i == 0 ? head : i - 1;
    next[i] = i + 1 == events.size() ? kEnd : i + 1;
  }
  auto unlink = [&](size_t e) {
    next[prev[e]] = next[e];
    if (next[e] != kEnd) prev[next[e]] = prev[e];
  };
  auto relink = [&](size_t e) {
    next[prev[e]] = e;
    if (next[e] != kEnd) prev[next[e]] = e;
  };
  auto lift = [&](size_t op) {
    unlink(call_of[op]);
    unlink(return_of[op]);
  };
  auto unlift = [&](size_t op) {
    relink(return_of[op]);
    relink(call_of[op]);
  };

  using State = std::optional<std::string>;
  auto step = [&](const State& state, const RegisterOp& op, State* out) {
    switch (op.kind) {
      case RegisterOp::Kind::kSave:
        *out = op.value;
        return true;
      case RegisterOp::Kind::kRemove:
        *out = std::nullopt;
        return true;
      case RegisterOp::Kind::kLoad:
        *out = state;
        return state == op.value;
    }
    return false;
  };

  std::vector<uint64_t> linearized((n + 63) / 64, 0);
  auto key_of = [&](const State& state) {
    std::string key(reinterpret_cast<const char*>(linearized.data()),
                    linearized.size() * sizeof(uint64_t));
    key.push_back(state ? '\1' : '\0');
    if (state) key.append(*state);
    return key;
  };
  std::unordered_set<std::string> seen;
  struct Frame {
    size_t op;
    State state;
  };
  std::vector<Frame> stack;
  State state = initial;
  size_t entry = next[head];
  size_t deepest = 0;
  while (next[head] != kEnd) {
    if (entry == kEnd) {  // cannot happen: a pending return always ends a scan
      result.ok = false;
      break;
    }
    const Event& event = events[entry];
    if (event.is_call) {
      const RegisterOp& op = ops[event.op];
      State after;
      bool fits = step(state, op, &after);
      if (fits) {
        linearized[event.op / 64] |= uint64_t{1} << (event.op % 64);
        bool fresh = seen.insert(key_of(after)).second;
        if (fresh) {
          if (++result.states_explored > max_states) {
            result.ok = false;
            result.explanation = "the search gave up after " + std::to_string(max_states) +
                                 " states (" + std::to_string(n) + " operations): no verdict";
            return result;
          }
          stack.push_back({event.op, state});
          deepest = std::max(deepest, stack.size());
          state = std::move(after);
          lift(event.op);
          entry = next[head];
          continue;
        }
        linearized[event.op / 64] &= ~(uint64_t{1} << (event.op % 64));
      }
      entry = next[entry];
    } else {
      // The earliest pending return: its operation must have been linearised by now.
      if (stack.empty()) {
        result.ok = false;
        break;
      }
      Frame frame = std::move(stack.back());
      stack.pop_back();
      state = std::move(frame.state);
      linearized[frame.op / 64] &= ~(uint64_t{1} << (frame.op % 64));
      unlift(frame.op);
      entry = next[call_of[frame.op]];
    }
  }
  if (!result.ok) {
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return ops[a].call < ops[b].call; });
    result.explanation = "no linearisation (initial " + (initial ? *initial : "absent") +
                         ", longest valid prefix " + std::to_string(deepest) + " of " +
                         std::to_string(n) + "):";
    for (size_t i : order) result.explanation += "\n  " + detail::Describe(ops[i]);
  }
  return result;
}

}  // namespace shardkit::migrate::testing
