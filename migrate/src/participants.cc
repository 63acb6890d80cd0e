#include "participants.h"

#include <fmt/format.h>

#include <algorithm>

#include "shardkit/message/json.h"

namespace shardkit::migrate::internal {
namespace {

Status BadNodes() {
  return Status::Invalid("nodes: must be an object of source or target shard -> node URL",
                         R"({"field":"nodes"})");
}

Result<Participant> Local(const std::string& name, const MigratorServiceOptions& find) {
  Participant p = find.find_shard ? find.find_shard(name) : Participant{};
  if (!p.store) {
    return Status::Invalid(fmt::format(
        "shard {}: no store serves it in this node (add a [[service]] of type store with shard "
        "= \"{}\" and reload, or name the node serving it in `nodes`)",
        name, name));
  }
  return Participant{name, p.store, p.gate, {}, {}};
}

// `name` on the node `nodes` names for it, else in this process.
Result<Participant> Find(const std::string& name, std::string_view role,
                         const std::map<std::string, std::string>& nodes,
                         const MigratorServiceOptions& find) {
  auto node = nodes.find(name);
  if (node == nodes.end()) return Local(name, find);
  if (!find.find_remote)
    return Status::Invalid("nodes: this migrator takes stores of its own node only",
                           R"({"field":"nodes"})");
  return find.find_remote(name, node->second, role);
}

// A target on a node that serves a source: that node owns the range already. Through a cluster's
// URL every shard of the cluster is reached, so there the processes answering (`process`, when
// the target answered) must match too.
Status NotOnASourceNode(const std::string& target, const std::string& url,
                        const std::string& process, const std::vector<std::string>& sources,
                        const MigratorServiceOptions& find) {
  for (const auto& source : sources) {
    auto there = find.find_remote(source, url, "source");
    if (!there.ok()) continue;
    if (!process.empty() && !there->process.empty() && process != there->process) continue;
    return Status::Invalid(
        fmt::format("target {} on node {}: that node serves the source {}; move the range to "
                    "another node",
                    target, url, source),
        JsonObject().Add("field", "nodes").Add("shard", target).Add("node", url).str());
  }
  return Status::Ok();
}

}  // namespace

Result<std::map<std::string, std::string>> ParseNodes(const Message& m) {
  std::map<std::string, std::string> nodes;
  if (!m.Has("nodes")) return nodes;
  auto text = m.GetObjectJson("nodes");
  if (!text) return BadNodes();
  auto doc = ParseJson(*text, "nodes");
  if (!doc.ok()) return doc.status();
  for (const auto& member : doc->GetObject()) {
    auto canonical = shard::CanonicalShardName(member.name.GetString());
    if (!canonical.ok() || !member.value.IsString()) return BadNodes();
    nodes[*canonical] = member.value.GetString();
  }
  return nodes;
}

Result<Placed> PlaceParticipants(const std::vector<std::string>& sources,
                                 const std::vector<std::string>& targets,
                                 const std::map<std::string, std::string>& nodes,
                                 const MigratorServiceOptions& find) {
  for (const auto& node : nodes) {
    auto named = [&](const std::vector<std::string>& v) {
      return std::find(v.begin(), v.end(), node.first) != v.end();
    };
    if (!named(sources) && !named(targets)) {
      return Status::InvalidField(
          "nodes", fmt::format("{} is not a source or target of this migration", node.first));
    }
  }
  Placed placed;
  for (const auto& name : sources) {
    auto p = Find(name, "source", nodes, find);
    if (!p.ok()) return p.status();
    placed.sources.push_back(std::move(p).value());
  }
  for (const auto& name : targets) {
    auto p = Find(name, "target", nodes, find);
    if (auto node = nodes.find(name); node != nodes.end() && find.find_remote) {
      std::string process = p.ok() ? p->process : "";
      if (Status s = NotOnASourceNode(name, node->second, process, sources, find); !s.ok())
        return s;
    }
    if (!p.ok()) return p.status();
    placed.targets.push_back(std::move(p).value());
  }
  return placed;
}

}  // namespace shardkit::migrate::internal
