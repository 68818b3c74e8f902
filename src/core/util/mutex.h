// A mutex that clang's thread-safety analysis can follow. libstdc++'s
// std::mutex carries no capability attributes, so lock order and guarded
// members are checked only through these. The `tsa` stage of
// contrib/run-tests builds with clang and -Werror=thread-safety: a member
// read without its mutex, or a function called without the lock it
// REQUIRES, fails the build. The lock order itself is stated in
// doc/design.md. Elsewhere (g++) the attributes compile to nothing.
#pragma once

#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define XM_THREAD_ATTRIBUTE(x) __attribute__((x))
#else
#define XM_THREAD_ATTRIBUTE(x)
#endif

#define CAPABILITY(x) XM_THREAD_ATTRIBUTE(capability(x))
#define SCOPED_CAPABILITY XM_THREAD_ATTRIBUTE(scoped_lockable)
#define GUARDED_BY(x) XM_THREAD_ATTRIBUTE(guarded_by(x))
#define PT_GUARDED_BY(x) XM_THREAD_ATTRIBUTE(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) XM_THREAD_ATTRIBUTE(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) XM_THREAD_ATTRIBUTE(acquired_after(__VA_ARGS__))
#define REQUIRES(...) XM_THREAD_ATTRIBUTE(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) XM_THREAD_ATTRIBUTE(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) XM_THREAD_ATTRIBUTE(acquire_shared_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) XM_THREAD_ATTRIBUTE(release_shared_capability(__VA_ARGS__))
#define RELEASE(...) XM_THREAD_ATTRIBUTE(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) XM_THREAD_ATTRIBUTE(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) XM_THREAD_ATTRIBUTE(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) XM_THREAD_ATTRIBUTE(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS XM_THREAD_ATTRIBUTE(no_thread_safety_analysis)

namespace xmatters {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return m_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex m_;
};

// Holds a Mutex for its scope; unlock() and lock() in between are followed
// by the analysis too.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) ACQUIRE(m) : lock_(m.m_) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void lock() ACQUIRE() { lock_.lock(); }
  void unlock() RELEASE() { lock_.unlock(); }

  // Waits on cv, the mutex released meanwhile and held again on return.
  // Write waits as loops around these (`while (!ready) lock.wait(cv);`), so
  // that the condition is read where the analysis sees the lock held.
  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <typename TimePoint>
  std::cv_status wait_until(std::condition_variable& cv, const TimePoint& deadline) {
    return cv.wait_until(lock_, deadline);
  }
  template <typename Duration>
  std::cv_status wait_for(std::condition_variable& cv, const Duration& d) {
    return cv.wait_for(lock_, d);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

// A reader-writer mutex: the plugin's, which collectd's callbacks share
// (ReaderLock) and its configuration, init and shutdown take alone
// (WriterLock).
class CAPABILITY("mutex") SharedMutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { m_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& m) ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
  ~ReaderLock() RELEASE() { m_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& m_;
};

class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& m) ACQUIRE(m) : m_(m) { m_.lock(); }
  ~WriterLock() RELEASE() { m_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& m_;
};

}  // namespace xmatters
