// Clock: injected time, so that caches and back-offs (RFC 8461 §3.3, §5.1)
// are testable with a fake clock. RealClock reads absl::Now().
#ifndef MXPOLICY_COMMON_CLOCK_H_
#define MXPOLICY_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mxpolicy {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace mxpolicy

#endif  // MXPOLICY_COMMON_CLOCK_H_
