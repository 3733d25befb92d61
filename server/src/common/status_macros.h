// Status helpers that Abseil 20220623 (Debian 12) does not ship yet:
// RETURN_IF_ERROR and ASSIGN_OR_RETURN, in the one place the project defines
// them.
#ifndef MXPOLICY_COMMON_STATUS_MACROS_H_
#define MXPOLICY_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MXP_CONCAT_INNER_(a, b) a##b
#define MXP_CONCAT_(a, b) MXP_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                                   \
  do {                                                          \
    if (::absl::Status mxp_status_ = (expr); !mxp_status_.ok()) \
      return mxp_status_;                                       \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` — declares/assigns `x` from a StatusOr
// or returns its error status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  MXP_ASSIGN_OR_RETURN_IMPL_(MXP_CONCAT_(mxp_statusor_, __LINE__), lhs, expr)
#define MXP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

#endif  // MXPOLICY_COMMON_STATUS_MACROS_H_
