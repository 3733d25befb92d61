// FakeClock: a Clock that moves only when a test says so.
#ifndef MXPOLICY_TESTS_SUPPORT_FAKE_CLOCK_H_
#define MXPOLICY_TESTS_SUPPORT_FAKE_CLOCK_H_

#include "server/src/common/clock.h"

namespace mxpolicy::testing {

// Not thread-safe: advance it only while nothing else reads it.
class FakeClock : public Clock {
 public:
  absl::Time Now() const override { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_FAKE_CLOCK_H_
