// Verify: a key-ordered diff of the sources' ranges against the targets.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <shardkit/migrate/migration.h>

namespace shardkit::migrate::internal {

// The common part of two ranges, if any.
std::optional<store::KsidRange> Intersect(const store::KsidRange& a, const store::KsidRange& b);

// Compares every source with the targets over their common ranges (`ranges`: shard -> range).
// `caught_up(source, position)` waits until the targets hold the source's changes up to
// `position`. Keys written on a source during its diff count as in flux, not as differences.
Result<VerifyReport> Diff(
    const std::vector<Participant>& sources, const std::vector<Participant>& targets,
    const std::map<std::string, store::KsidRange>& ranges,
    const std::function<Status(const std::string& source, uint64_t position)>& caught_up);

}  // namespace shardkit::migrate::internal
