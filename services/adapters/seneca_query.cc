// Seneca's entity rules on JSON values (seneca_query.h).
#include "seneca_query.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "shardkit/message/json.h"

namespace shardkit::services::seneca {
namespace {

constexpr std::string_view kVersion = "version";
constexpr std::string_view kUserVersion = "version$";

bool EndsWithDollar(std::string_view name) { return !name.empty() && name.back() == '$'; }

std::string_view Name(const rapidjson::Value& name) {
  return {name.GetString(), name.GetStringLength()};
}

const rapidjson::Value* Member(const rapidjson::Value& object, std::string_view name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(rapidjson::StringRef(name.data(), name.size()));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// The stored member that a query field names.
const rapidjson::Value* Field(const rapidjson::Value& stored, std::string_view field) {
  return Member(stored, field == kVersion ? kUserVersion : field);
}

std::string Part(const std::string& part) { return part.empty() ? "-" : part; }

std::string CanonPart(const rapidjson::Value& entity, const char* name) {
  const rapidjson::Value* v = Member(entity, name);
  return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : std::string();
}

// JavaScript's === on JSON values: objects and arrays are never equal (they would be different
// objects on the Seneca side).
bool StrictEqual(const rapidjson::Value* a, const rapidjson::Value& b) {
  if (a == nullptr) return false;  // undefined
  if (a->IsNumber() && b.IsNumber()) {
    if (a->IsInt64() && b.IsInt64()) return a->GetInt64() == b.GetInt64();
    if (a->IsUint64() && b.IsUint64()) return a->GetUint64() == b.GetUint64();
    return a->GetDouble() == b.GetDouble();
  }
  if (a->GetType() != b.GetType()) {
    return (a->IsTrue() && b.IsTrue()) || (a->IsFalse() && b.IsFalse());
  }
  if (a->IsNull()) return true;
  if (a->IsString()) return Name(*a) == Name(b);
  return false;
}

// JavaScript's ordering of two values: -1, 0 or 1, or nullopt where JS's < and > are both false
// (a missing value, values of different kinds).
std::optional<int> Compare(const rapidjson::Value* a, const rapidjson::Value* b) {
  if (a == nullptr || b == nullptr) return std::nullopt;
  if (a->IsString() && b->IsString()) {
    int c = Name(*a).compare(Name(*b));
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  // As JS converts for < and >: a string that is a whole number is that number ("" is 0);
  // any other string is NaN, which compares neither way.
  auto numeric = [](const rapidjson::Value* v, double& out) {
    if (v->IsNumber()) {
      out = v->GetDouble();
    } else if (v->IsBool()) {
      out = v->GetBool() ? 1 : 0;
    } else if (v->IsNull()) {
      out = 0;
    } else if (v->IsString()) {
      std::string text(Name(*v));
      char* end = nullptr;
      out = text.empty() ? 0 : std::strtod(text.c_str(), &end);
      if (!text.empty() && (end != text.c_str() + text.size() || std::isnan(out))) return false;
    } else {
      return false;
    }
    return true;
  };
  double x = 0, y = 0;
  if (!numeric(a, x) || !numeric(b, y)) return std::nullopt;
  return x < y ? -1 : x > y ? 1 : 0;
}

bool InArray(const rapidjson::Value* value, const rapidjson::Value& array) {
  for (const auto& item : array.GetArray()) {
    if (StrictEqual(value, item)) return true;
  }
  return false;
}

// mem-store's "mongo style constraints" (an entity is excluded when the constraint's value
// compares the wrong way); an object without them matches anything.
bool OperatorsHold(const rapidjson::Value* ev, const rapidjson::Value& ops) {
  auto op = [&](const char* name) {
    const rapidjson::Value* v = Member(ops, name);
    return v && !v->IsNull() ? v : nullptr;
  };
  auto is = [&](const char* name, std::initializer_list<int> excluded) {
    const rapidjson::Value* v = op(name);
    if (v == nullptr) return false;
    std::optional<int> c = Compare(v, ev);
    return c && std::find(excluded.begin(), excluded.end(), *c) != excluded.end();
  };
  if (auto v = op("$ne"); v && StrictEqual(ev, *v)) return false;
  if (is("$gte", {1}) || is("$gt", {0, 1}) || is("$lt", {-1, 0}) || is("$lte", {-1})) return false;
  if (auto v = op("$in"); v && v->IsArray() && !InArray(ev, *v)) return false;
  if (auto v = op("$nin"); v && v->IsArray() && InArray(ev, *v)) return false;
  return true;
}

// A non-negative count from skip$/limit$: a positive number (fractions cut), else nullopt.
std::optional<size_t> PositiveCount(const rapidjson::Value* v) {
  if (v == nullptr || !v->IsNumber()) return std::nullopt;
  double d = v->GetDouble();
  if (!(d > 0) || std::isinf(d)) return std::nullopt;
  return static_cast<size_t>(std::floor(d));
}

}  // namespace

std::string Canon::Kind() const {
  if (!zone.empty()) return zone + "/" + Part(base) + "/" + name;
  if (!base.empty()) return base + "/" + name;
  return name;
}

std::string Canon::Text() const { return Part(zone) + "/" + Part(base) + "/" + Part(name); }

Canon CanonOf(const rapidjson::Value* ent, const Message& message) {
  Canon canon;
  const rapidjson::Value* type = ent ? Member(*ent, "entity$") : nullptr;
  if (type && type->IsString()) {
    // "zone/base/name", "base/name" or "name", "-" for an unset part.
    std::vector<std::string> parts;
    std::string_view text = Name(*type);
    size_t start = 0;
    for (size_t slash; (slash = text.find('/', start)) != std::string_view::npos;
         start = slash + 1) {
      parts.emplace_back(text.substr(start, slash - start));
    }
    parts.emplace_back(text.substr(start));
    for (auto& p : parts) {
      if (p == "-") p.clear();
    }
    if (parts.size() == 3) canon = {parts[0], parts[1], parts[2]};
    if (parts.size() == 2) canon = {"", parts[0], parts[1]};
    if (parts.size() == 1) canon = {"", "", parts[0]};
  } else if (type && type->IsObject()) {
    canon = {CanonPart(*type, "zone"), CanonPart(*type, "base"), CanonPart(*type, "name")};
  }
  auto fill = [&](std::string& part, std::string_view property) {
    if (part.empty()) part = std::string(message.GetString(property).value_or(""));
  };
  if (canon.name.empty()) {
    fill(canon.zone, "zone");
    fill(canon.base, "base");
    fill(canon.name, "name");
  }
  return canon;
}

void ToStored(rapidjson::Value& ent, Allocator& allocator) {
  for (auto it = ent.MemberBegin(); it != ent.MemberEnd();) {
    if (EndsWithDollar(Name(it->name))) {
      it = ent.EraseMember(it);
    } else {
      ++it;
    }
  }
  if (auto it = ent.FindMember("version"); it != ent.MemberEnd()) {
    rapidjson::Value value(std::move(it->value));
    ent.EraseMember(it);
    ent.AddMember(rapidjson::Value(kUserVersion.data(), allocator), value, allocator);
  }
}

void ToSeneca(rapidjson::Value& stored, const Canon& canon, Allocator& allocator) {
  stored.RemoveMember("version");
  stored.RemoveMember("entity$");
  if (auto it = stored.FindMember("version$"); it != stored.MemberEnd()) {
    rapidjson::Value value(std::move(it->value));
    stored.EraseMember(it);
    stored.AddMember(rapidjson::Value(kVersion.data(), allocator), value, allocator);
  }
  stored.AddMember("entity$", rapidjson::Value(canon.Text().c_str(), allocator), allocator);
}

bool Matches(const rapidjson::Value& stored, const rapidjson::Value& q) {
  if (!q.IsObject()) return true;
  for (const auto& m : q.GetObject()) {
    std::string_view field = Name(m.name);
    if (field.find('$') != std::string_view::npos) continue;
    const rapidjson::Value* ev = Field(stored, field);
    const rapidjson::Value& qv = m.value;
    if (qv.IsArray()) {
      if (!InArray(ev, qv)) return false;
    } else if (qv.IsObject()) {
      if (!OperatorsHold(ev, qv)) return false;
    } else if (!StrictEqual(ev, qv)) {
      return false;
    }
  }
  return true;
}

void Shape(std::vector<rapidjson::Value*>& list, const rapidjson::Value& q) {
  if (!q.IsObject()) return;
  if (const rapidjson::Value* sort = Member(q, "sort$");
      sort && sort->IsObject() && sort->MemberCount() > 0) {
    const auto& first = *sort->MemberBegin();
    std::string field(Name(first.name));
    int direction = first.value.IsNumber() && first.value.GetDouble() < 0 ? -1 : 1;
    std::stable_sort(list.begin(), list.end(), [&](rapidjson::Value* a, rapidjson::Value* b) {
      return direction * Compare(Field(*a, field), Field(*b, field)).value_or(0) < 0;
    });
  }
  if (auto skip = PositiveCount(Member(q, "skip$"))) {
    list.erase(list.begin(),
               list.begin() + static_cast<std::ptrdiff_t>(std::min(*skip, list.size())));
  }
  if (auto limit = PositiveCount(Member(q, "limit$")); limit && *limit < list.size()) {
    list.resize(*limit);
  }
  const rapidjson::Value* fields = Member(q, "fields$");
  if (fields == nullptr || !fields->IsArray()) return;
  for (rapidjson::Value* ent : list) {
    for (auto it = ent->MemberBegin(); it != ent->MemberEnd();) {
      std::string_view name = Name(it->name);
      std::string_view asked = name == kUserVersion ? kVersion : name;
      bool keep = name == "id" || name == kVersion;  // the store's version goes later anyway
      for (const auto& f : fields->GetArray()) {
        keep = keep || (f.IsString() && Name(f) == asked);
      }
      it = keep ? it + 1 : ent->EraseMember(it);
    }
  }
}

bool IsIdValue(const rapidjson::Value& value) { return value.IsString() || value.IsNumber(); }

std::string IdText(const rapidjson::Value& value) {
  return value.IsString() ? std::string(Name(value)) : ToJsonText(value);
}

}  // namespace shardkit::services::seneca
