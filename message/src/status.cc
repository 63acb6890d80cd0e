#include "shardkit/message/status.h"

#include <array>

#include "shardkit/message/json.h"

namespace shardkit {
namespace {
constexpr std::array<std::string_view, 10> kCodeNames = {
    "ok",      "not_found",  "invalid",     "conflict", "wrong_shard",
    "timeout", "overloaded", "unavailable", "internal", "no_route",
};
}  // namespace

Status Status::InvalidField(std::string_view field, std::string_view problem) {
  std::string message(field);
  message += ": ";
  message += problem;
  std::string details = R"({"field":)";
  AppendJsonString(field, details);
  details += '}';
  return Invalid(std::move(message), std::move(details));
}

std::string_view CodeName(Code code) { return kCodeNames[static_cast<size_t>(code)]; }

std::optional<Code> CodeFromName(std::string_view name) {
  for (size_t i = 0; i < kCodeNames.size(); ++i) {
    if (kCodeNames[i] == name) return static_cast<Code>(i);
  }
  return std::nullopt;
}

std::string Status::ToString() const {
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace shardkit
