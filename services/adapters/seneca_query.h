// Seneca's entity semantics on JSON values, for the seneca-entity service type
// (seneca_entity.cc): entity types, the stored form of an entity, query matching and the
// sort$/skip$/limit$/fields$ shaping of a list. Pure functions on RapidJSON values; the rules
// follow seneca-mem-store, the store Seneca's conformance suites were written against, including
// its leniency (an invalid sort$, skip$, limit$ or fields$ is ignored, not refused).
#pragma once

#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "shardkit/message/message.h"

namespace shardkit::services::seneca {

using Allocator = rapidjson::Document::AllocatorType;

// An entity type zone/base/name; empty parts are unset.
struct Canon {
  std::string zone, base, name;
  // The shardkit kind: "name", "base/name" or "zone/base/name" ("-" for an unset base).
  std::string Kind() const;
  // Seneca's canonical text, "-" for unset parts: "-/-/foo", "zen/moon/bar".
  std::string Text() const;
};

// The entity type of a request: `entity$` of `ent` (save) or `qent` (the others), as text
// "zone/base/name" or as an object, else the message's name/base/zone properties.
Canon CanonOf(const rapidjson::Value* ent, const Message& message);

// The data to store: every member whose name ends in '$' dropped (directives, entity$, id$), and
// a field named "version" kept as "version$" (the store owns "version"). Nulls are kept.
void ToStored(rapidjson::Value& ent, Allocator& allocator);

// A stored entity as Seneca sees it: the store's "version" dropped, "version$" named "version"
// again, and `entity$` set to the type's canonical text.
void ToSeneca(rapidjson::Value& stored, const Canon& canon, Allocator& allocator);

// Whether a stored entity matches every plain (no '$') field of query `q`: a scalar by strict
// equality, an array as "any of", an object by the operators $ne $gt $gte $lt $lte $in $nin.
// `version` in the query means the entity's own field (stored as "version$").
bool Matches(const rapidjson::Value& stored, const rapidjson::Value& q);

// Applies q's sort$ (first field; a negative number sorts descending), skip$ (a positive
// number), limit$ (a positive number) and fields$ (an array of names; id always kept) to `list`,
// in that order, ignoring any of them whose value is not of that form.
void Shape(std::vector<rapidjson::Value*>& list, const rapidjson::Value& q);

// Whether `value` is a string or a number: what an entity id can be.
bool IsIdValue(const rapidjson::Value& value);
// An id as text: a string as it is, a number as its JSON text.
std::string IdText(const rapidjson::Value& value);

}  // namespace shardkit::services::seneca
