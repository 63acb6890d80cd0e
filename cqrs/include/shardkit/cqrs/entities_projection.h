// The entities projection (projection.h): a copy of the entities of one kind, so store:load and
// store:list are served from the read model. Reads save/remove events of `kind`; ids are stored in
// keys separated by NUL (read_model.h), so any text is safe in them.
//   store:load,kind:K id:I                       -> {"ent":{…}} | not_found
//   store:list,kind:K [q:{field:value,…, limit$, cursor$}]
//                                                -> {"items":[…],"cursor":"…"?}
//   Without limit$, one page of store::kDefaultListLimit items. Lists are in id order (byte order);
//   filters are equalities on top-level fields compared as compact JSON text (so 1 and 1.0 differ);
//   sort$, skip$, fields$ answer `invalid`.
//
// It is the one projection a node knows without registering (`projection = "entities"`); read
// models of your own are projection types (shardkit/services/projection_types.h).
#pragma once

#include <memory>
#include <string>

#include <shardkit/cqrs/projection.h>

namespace shardkit::cqrs {

std::unique_ptr<Projection> MakeEntitiesProjection(std::string kind);

}  // namespace shardkit::cqrs
