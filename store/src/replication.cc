// The replication protocol (replication.h): the wire form of changes and scanned entities, and
// the store:replicate / store:replication operations.
#include "shardkit/store/replication.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <tuple>

#include "shardkit/message/json.h"

namespace shardkit::store {
namespace {

void AppendKsid(uint64_t ksid, std::string& out) {
  fmt::format_to(std::back_inserter(out), "\"{:016x}\"", ksid);
}

Result<uint64_t> KsidFromHex(const rapidjson::Value& v, std::string_view field) {
  uint64_t ksid = 0;
  if (v.IsString()) {
    const char* s = v.GetString();
    auto [end, ec] = std::from_chars(s, s + v.GetStringLength(), ksid, 16);
    if (ec == std::errc() && end == s + v.GetStringLength() && v.GetStringLength() > 0) return ksid;
  }
  return Status::InvalidField(field, "must be a ksid in hex");
}

Status CheckVersion(const Message& m) {
  auto v = m.GetUint("v");
  if (!v) return Status::InvalidField("v", "the replication protocol version is required");
  if (*v != kReplicationProtocol) {
    return Status::InvalidField(
        "v",
        fmt::format("replication protocol version {} is not spoken by this node (it speaks {})", *v,
                    kReplicationProtocol));
  }
  return Status::Ok();
}

// Parses one array of arrays, handing each row to `row`.
template <typename Row>
Status ForEachRow(std::string_view json, std::string_view field, Row row) {
  auto doc = ParseJson(json, field);
  if (!doc.ok()) return doc.status();
  if (!doc->IsArray()) return Status::InvalidField(field, "must be an array");
  for (const auto& r : doc->GetArray()) {
    if (!r.IsArray()) return Status::InvalidField(field, "each item must be an array");
    if (Status s = row(r.GetArray()); !s.ok()) return s;
  }
  return Status::Ok();
}

// One page of the live entities of a ksid range after a key, as `records` and `more`.
Status Scan(EntityStore& store, const Message& m, Message& reply) {
  auto doc = ParseJson(*m.GetObjectJson("scan"), "scan");
  if (!doc.ok()) return doc.status();
  KsidRange range;
  if (doc->HasMember("begin")) {
    auto b = KsidFromHex((*doc)["begin"], "scan.begin");
    if (!b.ok()) return b.status();
    range.begin = *b;
  }
  if (doc->HasMember("end")) {
    auto e = KsidFromHex((*doc)["end"], "scan.end");
    if (!e.ok()) return e.status();
    range.end = *e;
  }
  size_t limit = 1000;
  if (doc->HasMember("limit")) {
    if (!(*doc)["limit"].IsUint64() || (*doc)["limit"].GetUint64() == 0)
      return Status::InvalidField("scan.limit", "must be a positive integer");
    limit = std::min<size_t>((*doc)["limit"].GetUint64(), 10'000);
  }
  // Key order is (kind, ksid, id), as ScanRange visits: skip up to and including `after`.
  std::optional<std::tuple<std::string, uint64_t, std::string>> after;
  if (doc->HasMember("after")) {
    const auto& a = (*doc)["after"];
    if (!a.IsArray() || a.Size() != 3 || !a[0].IsString() || !a[2].IsString())
      return Status::InvalidField("scan.after", "must be [kind, ksid, id]");
    auto ksid = KsidFromHex(a[1], "scan.after");
    if (!ksid.ok()) return ksid.status();
    after.emplace(a[0].GetString(), *ksid, a[2].GetString());
  }
  std::string records = "[";
  size_t n = 0;
  bool more = false;
  Status scanned = store.ScanRange("", range, [&](const EntityRecord& r) {
    if (after && std::tie(r.kind, r.ksid, r.id) <= *after) return true;
    if (n == limit) {
      more = true;
      return false;
    }
    records += n++ ? ",[" : "[";
    AppendKsid(r.ksid, records);
    records += ',';
    AppendJsonString(r.kind, records);
    records += ',';
    AppendJsonString(r.id, records);
    fmt::format_to(std::back_inserter(records), ",{},{},", r.version, r.expires_at_ms);
    AppendJsonString(r.value, records);
    records += ']';
    return true;
  });
  if (!scanned.ok()) return scanned;
  reply.SetArrayJson("records", records + "]");
  reply.SetBool("more", more);
  return Status::Ok();
}

}  // namespace

namespace {

// The seven fields of a change, without the brackets.
void AppendChange(const ChangeRecord& r, std::string& out) {
  AppendKsid(r.ksid, out);
  out += ',';
  AppendJsonString(r.kind, out);
  out += ',';
  AppendJsonString(r.id, out);
  fmt::format_to(std::back_inserter(out), ",{},{},{},", static_cast<int>(r.op), r.version,
                 r.expires_at_ms);
  if (r.value.empty()) {
    out += "null";
  } else {
    AppendJsonString(r.value, out);
  }
}

// The seven fields of a change at `r[at]`…`r[at+6]`, into `c`.
template <typename Row>
Status ParseChange(const Row& r, size_t at, std::string_view field, ChangeRecord& c) {
  if (r.Size() != at + 7 || !r[at + 1].IsString() || !r[at + 2].IsString() || !r[at + 3].IsUint() ||
      r[at + 3].GetUint() < 1 || r[at + 3].GetUint() > 4 || !r[at + 4].IsUint64() ||
      !r[at + 5].IsInt64() || !(r[at + 6].IsString() || r[at + 6].IsNull())) {
    return Status::InvalidField(
        field, "each change must be [ksid, kind, id, op 1-4, version, expires_at_ms, value]");
  }
  auto ksid = KsidFromHex(r[at], field);
  if (!ksid.ok()) return ksid.status();
  c.ksid = *ksid;
  c.kind.assign(r[at + 1].GetString(), r[at + 1].GetStringLength());
  c.id.assign(r[at + 2].GetString(), r[at + 2].GetStringLength());
  c.op = static_cast<ChangeOp>(r[at + 3].GetUint());
  c.version = r[at + 4].GetUint64();
  c.expires_at_ms = r[at + 5].GetInt64();
  if (r[at + 6].IsString()) c.value.assign(r[at + 6].GetString(), r[at + 6].GetStringLength());
  return Status::Ok();
}

}  // namespace

namespace {

// A row per change: what `head` writes (the feed's sequence and mark), then the change.
template <typename Head>
std::string ChangeRows(const std::vector<ChangeRecord>& rows, Head head) {
  std::string out = "[";
  for (size_t i = 0; i < rows.size(); ++i) {
    out += i ? ",[" : "[";
    head(rows[i], out);
    AppendChange(rows[i], out);
    out += ']';
  }
  return out + "]";
}

// The rows of `field`, each a change from index `at`; `head` reads what comes before it.
template <typename Head>
Result<std::vector<ChangeRecord>> ChangeRowsFrom(std::string_view json, std::string_view field,
                                                 size_t at, Head head) {
  std::vector<ChangeRecord> changes;
  Status parsed = ForEachRow(json, field, [&](const auto& r) -> Status {
    ChangeRecord c;
    Status s = head(r, c);
    if (s.ok()) s = ParseChange(r, at, field, c);
    if (s.ok()) changes.push_back(std::move(c));
    return s;
  });
  if (!parsed.ok()) return parsed;
  return changes;
}

}  // namespace

std::string ChangesToReplicationJson(const std::vector<ChangeRecord>& changes) {
  return ChangeRows(changes, [](const ChangeRecord&, std::string&) {});
}

Result<std::vector<ChangeRecord>> ChangesFromReplicationJson(std::string_view json) {
  return ChangeRowsFrom(json, "changes", 0,
                        [](const auto&, ChangeRecord&) { return Status::Ok(); });
}

std::string FeedToReplicationJson(const std::vector<ChangeRecord>& records) {
  return ChangeRows(records, [](const ChangeRecord& r, std::string& out) {
    fmt::format_to(std::back_inserter(out), "{},{},", r.sequence, r.replicated);
  });
}

Result<std::vector<ChangeRecord>> FeedFromReplicationJson(std::string_view json) {
  return ChangeRowsFrom(json, "feed", 2, [](const auto& r, ChangeRecord& c) {
    if (r.Size() < 2 || !r[0].IsUint64() || !r[1].IsBool())
      return Status::InvalidField("feed", "each record must be [seq, replicated, change…]");
    c.sequence = r[0].GetUint64();
    c.replicated = r[1].GetBool();
    return Status::Ok();
  });
}

Result<std::vector<EntityRecord>> RecordsFromReplicationJson(std::string_view json) {
  std::vector<EntityRecord> records;
  Status parsed = ForEachRow(json, "records", [&](const auto& r) -> Status {
    if (r.Size() != 6 || !r[1].IsString() || !r[2].IsString() || !r[3].IsUint64() ||
        !r[4].IsInt64() || !r[5].IsString()) {
      return Status::InvalidField("records", "each must be [ksid, kind, id, version, exp, value]");
    }
    auto ksid = KsidFromHex(r[0], "records");
    if (!ksid.ok()) return ksid.status();
    records.push_back({r[1].GetString(), *ksid, r[2].GetString(), r[5].GetString(),
                       r[3].GetUint64(), r[4].GetInt64()});
    return Status::Ok();
  });
  if (!parsed.ok()) return parsed;
  return records;
}

namespace {

// Fault injection for the process tests (docs/migration.md): SHARDKIT_REPLICATE_DELAY_MS=<ms>
// makes every store:replicate and every feed read of this process wait that long first, a target
// much slower than its source (in both directions of a migration).
void InjectedDelay() {
  static const long delay_ms = [] {
    const char* text = std::getenv("SHARDKIT_REPLICATE_DELAY_MS");
    return text ? std::strtol(text, nullptr, 10) : 0L;
  }();
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
}

// consumer:{name, op: register|advance|remove, position}: a migration on another node tails
// this feed (reverse replication) and keeps its consumer here, so nothing it has not read is
// trimmed.
Status ConsumerOp(EntityStore& store, const Message& m) {
  auto doc = ParseJson(*m.GetObjectJson("consumer"), "consumer");
  if (!doc.ok()) return doc.status();
  if (!doc->HasMember("name") || !(*doc)["name"].IsString() ||
      (*doc)["name"].GetStringLength() == 0)
    return Status::InvalidField("consumer.name", "must be a non-empty name");
  std::string name = (*doc)["name"].GetString();
  std::string op = doc->HasMember("op") && (*doc)["op"].IsString() ? (*doc)["op"].GetString() : "";
  if (op == "remove") return store.feed().RemoveConsumer(name);
  if (!doc->HasMember("position") || !(*doc)["position"].IsUint64())
    return Status::InvalidField("consumer.position", "must be a non-negative integer");
  uint64_t position = (*doc)["position"].GetUint64();
  if (op == "register") return store.feed().RegisterConsumer(name, position);
  if (op == "advance") return store.feed().AdvanceConsumer(name, position);
  return Status::InvalidField("consumer.op", "must be one of register, advance, remove");
}

// feed:{from, limit}: the feed's records from `from`, each with its sequence and whether it was
// replicated, as `feed`.
Status ReadFeed(EntityStore& store, const Message& m, Message& reply) {
  auto doc = ParseJson(*m.GetObjectJson("feed"), "feed");
  if (!doc.ok()) return doc.status();
  if (!doc->HasMember("from") || !(*doc)["from"].IsUint64() || (*doc)["from"].GetUint64() == 0)
    return Status::InvalidField("feed.from", "must be a positive integer (a sequence number)");
  size_t limit = 1000;
  if (doc->HasMember("limit")) {
    if (!(*doc)["limit"].IsUint64() || (*doc)["limit"].GetUint64() == 0)
      return Status::InvalidField("feed.limit", "must be a positive integer");
    limit = std::min<size_t>((*doc)["limit"].GetUint64(), 10'000);
  }
  InjectedDelay();
  auto records = store.feed().ReadChanges((*doc)["from"].GetUint64(), limit);
  if (!records.ok()) return records.status();
  reply.SetArrayJson("feed", FeedToReplicationJson(*records));
  return Status::Ok();
}

}  // namespace

Result<Message> ServeReplicate(EntityStore& store, const Message& m) {
  if (Status s = CheckVersion(m); !s.ok()) return s;
  InjectedDelay();
  auto stream = m.GetString("stream");
  if (!stream || stream->empty()) return Status::InvalidField("stream", "must be a non-empty name");
  auto position = m.GetUint("position");
  if (!position) return Status::InvalidField("position", "must be a non-negative integer");
  auto json = m.GetArrayJson("changes");
  if (!json) return Status::InvalidField("changes", "must be an array");
  auto changes = ChangesFromReplicationJson(*json);
  if (!changes.ok()) return changes.status();
  bool assume_absent = m.GetBool("assume_absent").value_or(false);
  if (Status s = store.ApplyReplicated(*stream, *changes, *position, assume_absent); !s.ok())
    return s;
  Message reply;
  reply.SetUint("position", *position);
  return reply;
}

Result<Message> ServeReplicationState(EntityStore& store, const Message& m) {
  if (Status s = CheckVersion(m); !s.ok()) return s;
  for (const char* field : {"claim", "release"}) {
    if (!m.Has(field)) continue;
    auto owner = m.GetString(field);
    if (!owner || owner->empty()) return Status::InvalidField(field, "must be a migration id");
    Status s =
        std::string_view(field) == "claim" ? store.Claim(*owner) : store.ReleaseClaim(*owner);
    if (!s.ok()) return s;
  }
  if (m.Has("consumer")) {
    if (!m.GetObjectJson("consumer")) return Status::InvalidField("consumer", "must be an object");
    if (Status s = ConsumerOp(store, m); !s.ok()) return s;
  }
  Message reply;
  reply.SetUint("v", kReplicationProtocol);
  reply.SetUint("last", store.feed().LastSequence());
  JsonObject consumers;
  for (const auto& [name, position] : store.feed().Consumers()) consumers.Add(name, position);
  reply.SetObjectJson("consumers", consumers.str());
  auto claimant = store.Claimant();
  if (!claimant.ok()) return claimant.status();
  reply.SetString("claimant", *claimant);
  auto streams = store.ReplicatedStreams();
  if (!streams.ok()) return streams.status();
  JsonObject positions;
  for (const auto& [name, position] : *streams) positions.Add(name, position);
  reply.SetObjectJson("streams", positions.str());
  if (auto stream = m.GetString("stream")) {
    auto it = streams->find(std::string(*stream));
    reply.SetUint("position", it == streams->end() ? 0 : it->second);
  }
  if (m.Has("feed")) {
    if (!m.GetObjectJson("feed")) return Status::InvalidField("feed", "must be an object");
    if (Status s = ReadFeed(store, m, reply); !s.ok()) return s;
  }
  if (m.Has("scan")) {
    if (!m.GetObjectJson("scan")) return Status::InvalidField("scan", "must be an object");
    if (Status s = Scan(store, m, reply); !s.ok()) return s;
  }
  return reply;
}

}  // namespace shardkit::store
