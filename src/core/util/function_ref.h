// A non-owning reference to a callable, for callbacks that are only called
// during the call they are passed to: unlike std::function it never
// allocates (a lambda capturing more than two references would), and it
// costs one indirect call.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace xmatters {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  // f must outlive every call through this reference; a temporary passed
  // as an argument lives as long as the call it is passed to.
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef> &&
                                                    std::is_invocable_r_v<R, F&, Args...>>>
  FunctionRef(F&& f) noexcept  // NOLINT: implicit, as std::function's
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::add_pointer_t<std::remove_reference_t<F>>>(object))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace xmatters
