#include "journal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <shardkit/message/file.h>
#include <shardkit/message/json.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>

namespace shardkit::migrate::internal {
namespace {

const Phase kPhases[] = {Phase::kCreated,     Phase::kCopied,     Phase::kCutover,
                         Phase::kCutoverDone, Phase::kRolledBack, Phase::kCompleted,
                         Phase::kCancelled};

void WriteMap(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* name,
              const std::map<std::string, uint64_t>& m) {
  w.Key(name);
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.Uint64(v);
  }
  w.EndObject();
}

void WriteList(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* name,
               const std::vector<std::string>& list) {
  w.Key(name);
  w.StartArray();
  for (const auto& v : list) w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  w.EndArray();
}

bool ReadList(const rapidjson::Document& d, const char* name, std::vector<std::string>& out) {
  auto it = d.FindMember(name);
  if (it == d.MemberEnd()) return true;
  if (!it->value.IsArray()) return false;
  for (const auto& v : it->value.GetArray()) {
    if (!v.IsString()) return false;
    out.emplace_back(v.GetString(), v.GetStringLength());
  }
  return true;
}

bool ReadMap(const rapidjson::Document& d, const char* name, std::map<std::string, uint64_t>& out) {
  auto it = d.FindMember(name);
  if (it == d.MemberEnd()) return true;
  if (!it->value.IsObject()) return false;
  for (const auto& m : it->value.GetObject()) {
    if (!m.value.IsUint64()) return false;
    out[m.name.GetString()] = m.value.GetUint64();
  }
  return true;
}

}  // namespace

Result<JournalState> ReadJournal(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(fmt::format("no journal at {}", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseJournal(text.str(), path);
}

Result<JournalState> ParseJournal(std::string_view text, const std::string& path) {
  // ParseJson pads the text: RapidJSON's SSE2 scanner reads 16 bytes at a time.
  auto parsed = ParseJson(text, path);
  if (!parsed.ok()) return Status::Internal(fmt::format("journal {} is corrupt", path));
  rapidjson::Document& d = *parsed;
  if (!d.IsObject() || !d.HasMember("phase") || !d["phase"].IsString()) {
    return Status::Internal(fmt::format("journal {} is corrupt", path));
  }
  JournalState state;
  bool known = false;
  for (Phase p : kPhases) {
    if (PhaseName(p) == d["phase"].GetString()) {
      state.phase = p;
      known = true;
    }
  }
  if (!known)
    return Status::Internal(
        fmt::format("journal {}: unknown phase '{}'", path, d["phase"].GetString()));
  if (d.HasMember("epoch_before") && d["epoch_before"].IsUint64())
    state.epoch_before = d["epoch_before"].GetUint64();
  if (d.HasMember("back") && d["back"].IsBool()) state.back = d["back"].GetBool();
  if (d.HasMember("epoch_after") && d["epoch_after"].IsUint64())
    state.epoch_after = d["epoch_after"].GetUint64();
  if (!ReadMap(d, "p0", state.p0) || !ReadMap(d, "fence", state.fence) ||
      !ReadMap(d, "reverse_from", state.reverse_from) || !ReadList(d, "sources", state.sources) ||
      !ReadList(d, "targets", state.targets) ||
      !ReadList(d, "fresh_targets", state.fresh_targets)) {
    return Status::Internal(fmt::format("journal {} is corrupt", path));
  }
  return state;
}

Status WriteJournal(const std::string& path, const JournalState& state) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("phase");
  std::string phase(PhaseName(state.phase));
  w.String(phase.c_str());
  WriteList(w, "sources", state.sources);
  WriteList(w, "targets", state.targets);
  WriteList(w, "fresh_targets", state.fresh_targets);
  w.Key("back");
  w.Bool(state.back);
  w.Key("epoch_before");
  w.Uint64(state.epoch_before);
  w.Key("epoch_after");
  w.Uint64(state.epoch_after);
  WriteMap(w, "p0", state.p0);
  WriteMap(w, "fence", state.fence);
  WriteMap(w, "reverse_from", state.reverse_from);
  w.EndObject();
  if (!WriteFileAtomically(path, WrittenJson(buffer)).ok())
    return Status::Internal(fmt::format("cannot write journal {}", path));
  return Status::Ok();
}

}  // namespace shardkit::migrate::internal
