// SpoolDir (collectd-xmatters(5), OPTIONS and SECURITY): created 0700, never chmodded, refused when
// another user owns it or can write it, judged at its target when it is a
// symlink, no symlinked lock, one process at a time.
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"
#include "store/spool_dir.h"
#include "testing.h"

namespace {

using xmatters::ConfigError;
using xmatters::SpoolDir;

mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// The ERROR the configuration would log, or "" when path is accepted.
std::string refusal(const std::string& path, bool create_parent = false) {
  std::vector<std::string> warnings;
  try {
    SpoolDir dir(path, create_parent, warnings);
    return "";
  } catch (const ConfigError& e) {
    return e.what();
  }
}

bool says(const std::string& error, const std::string& needle) {
  const bool found = error.find(needle) != std::string::npos;
  if (!found) std::fprintf(stderr, "\n  expected \"%s\" in: \"%s\"\n", needle.c_str(), error.c_str());
  return found;
}

bool root() { return ::geteuid() == 0; }

void test_missing_directory_is_created_private() {
  xmtest::TempDir t;
  const mode_t old = ::umask(0);  // the mode must not depend on collectd's umask
  std::vector<std::string> warnings;
  { SpoolDir dir(t / "spool", false, warnings); }
  ::umask(old);
  CU_ASSERT_EQUAL(mode_of(t / "spool"), 0700u);
  CU_ASSERT_EQUAL(mode_of(t / "spool/lock"), 0600u);
  CU_ASSERT_TRUE(warnings.empty());
}

void test_missing_parent_is_refused_unless_it_is_the_base_dir() {
  xmtest::TempDir t;
  CU_ASSERT_TRUE(says(refusal(t / "nowhere/spool"), "SpoolDir \"" + t / "nowhere/spool" + "\": its parent directory does not exist"));
  CU_ASSERT_FALSE(xmtest::file_exists(t / "nowhere"));
  CU_ASSERT_EQUAL(refusal(t / "base/xmatters", true), "");
  CU_ASSERT_EQUAL(mode_of(t / "base/xmatters"), 0700u);
}

void test_looser_directory_is_kept_as_it_is_with_a_warning() {
  xmtest::TempDir t;
  CU_ASSERT_EQUAL_FATAL(::mkdir((t / "spool").c_str(), 0700), 0);
  CU_ASSERT_EQUAL_FATAL(::chmod((t / "spool").c_str(), 0755), 0);
  std::vector<std::string> warnings;
  { SpoolDir dir(t / "spool", false, warnings); }
  CU_ASSERT_EQUAL(mode_of(t / "spool"), 0755u);
  CU_ASSERT_EQUAL_FATAL(warnings.size(), 1u);
  CU_ASSERT_TRUE(says(warnings[0], "has mode 0755; 0700 is recommended"));
}

void test_directory_others_can_write_is_refused_and_untouched() {
  xmtest::TempDir t;
  for (const mode_t mode : {01777u, 0770u, 0757u}) {
    CU_ASSERT_EQUAL_FATAL(::mkdir((t / "shared").c_str(), 0700), 0);
    CU_ASSERT_EQUAL_FATAL(::chmod((t / "shared").c_str(), mode), 0);
    CU_ASSERT_TRUE(says(refusal(t / "shared"), "writable by other users"));
    CU_ASSERT_EQUAL(mode_of(t / "shared"), mode);
    CU_ASSERT_FALSE(xmtest::file_exists(t / "shared/lock"));
    CU_ASSERT_EQUAL_FATAL(::rmdir((t / "shared").c_str()), 0);
  }
}

void test_directory_of_another_user_is_refused() {
  xmtest::TempDir t;
  const passwd* nobody = ::getpwnam("nobody");
  CU_ASSERT_PTR_NOT_NULL_FATAL(nobody);
  CU_ASSERT_EQUAL_FATAL(::mkdir((t / "theirs").c_str(), 0700), 0);
  CU_ASSERT_EQUAL_FATAL(::chown((t / "theirs").c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  CU_ASSERT_TRUE(says(refusal(t / "theirs"), "is owned by uid " + std::to_string(nobody->pw_uid)));
  struct stat st {};
  CU_ASSERT_EQUAL(::stat((t / "theirs").c_str(), &st), 0);
  CU_ASSERT_EQUAL(st.st_uid, nobody->pw_uid);
  CU_ASSERT_EQUAL(mode_of(t / "theirs"), 0700u);
}

// A SpoolDir that is a symlink is judged at its target (an operator's
// /var/lib/collectd/xmatters -> /srv/spool keeps working).
void test_symlinked_directory_is_judged_at_its_target() {
  xmtest::TempDir t;
  CU_ASSERT_EQUAL_FATAL(::mkdir((t / "real").c_str(), 0700), 0);
  CU_ASSERT_EQUAL_FATAL(::symlink((t / "real").c_str(), (t / "link").c_str()), 0);
  CU_ASSERT_EQUAL(refusal(t / "link"), "");
  CU_ASSERT_TRUE(xmtest::file_exists(t / "real/lock"));

  CU_ASSERT_EQUAL_FATAL(::mkdir((t / "open").c_str(), 0700), 0);
  CU_ASSERT_EQUAL_FATAL(::chmod((t / "open").c_str(), 01777), 0);
  CU_ASSERT_EQUAL_FATAL(::symlink((t / "open").c_str(), (t / "link-open").c_str()), 0);
  CU_ASSERT_TRUE(says(refusal(t / "link-open"), "writable by other users"));

  CU_ASSERT_EQUAL_FATAL(::symlink((t / "gone").c_str(), (t / "dangling").c_str()), 0);
  CU_ASSERT_TRUE(says(refusal(t / "dangling"), "cannot open it: No such file or directory"));
}

void test_not_a_directory_is_refused() {
  xmtest::TempDir t;
  xmtest::write_file(t / "file", "x");
  CU_ASSERT_TRUE(says(refusal(t / "file"), "is not a directory"));
  CU_ASSERT_TRUE(says(refusal(t / "file/spool"), "cannot create it: Not a directory"));
  CU_ASSERT_EQUAL(xmtest::read_file(t / "file"), "x");
}

// As root, a planted link would make the plugin write wherever it points.
void test_planted_lock_symlink_is_refused() {
  xmtest::TempDir t;
  CU_ASSERT_EQUAL_FATAL(::mkdir((t / "spool").c_str(), 0700), 0);
  xmtest::write_file(t / "victim", "precious");
  const mode_t victim_mode = mode_of(t / "victim");
  CU_ASSERT_EQUAL_FATAL(::symlink((t / "victim").c_str(), (t / "spool/lock").c_str()), 0);
  CU_ASSERT_TRUE(says(refusal(t / "spool"), "its file lock is a symbolic link; refused"));
  CU_ASSERT_EQUAL(xmtest::read_file(t / "victim"), "precious");
  CU_ASSERT_EQUAL(mode_of(t / "victim"), victim_mode);
}

void test_second_holder_is_refused_until_the_first_is_gone() {
  xmtest::TempDir t;
  std::vector<std::string> warnings;
  {
    SpoolDir first(t / "spool", false, warnings);
    CU_ASSERT_TRUE(says(refusal(t / "spool"), "is in use by another process"));
  }
  CU_ASSERT_EQUAL(refusal(t / "spool"), "");
}

// A read-only file system (root ignores permission bits, so a read-only
// mount is the real case).
void test_read_only_file_system_is_refused() {
  xmtest::TempDir t;
  CU_ASSERT_EQUAL_FATAL(::mkdir((t / "ro").c_str(), 0700), 0);
  CU_ASSERT_EQUAL_FATAL(::mount("tmpfs", (t / "ro").c_str(), "tmpfs", 0, "size=64k,mode=0700"), 0);
  CU_ASSERT_EQUAL(::mount(nullptr, (t / "ro").c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0);
  CU_ASSERT_TRUE(says(refusal(t / "ro"), "cannot be written: Read-only file system"));
  CU_ASSERT_EQUAL(::umount((t / "ro").c_str()), 0);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<xmtest::Test> tests = {
      {"missing_directory_is_created_private", test_missing_directory_is_created_private},
      {"missing_parent_is_refused_unless_it_is_the_base_dir", test_missing_parent_is_refused_unless_it_is_the_base_dir},
      {"looser_directory_is_kept_as_it_is_with_a_warning", test_looser_directory_is_kept_as_it_is_with_a_warning},
      {"directory_others_can_write_is_refused_and_untouched", test_directory_others_can_write_is_refused_and_untouched},
      {"symlinked_directory_is_judged_at_its_target", test_symlinked_directory_is_judged_at_its_target},
      {"not_a_directory_is_refused", test_not_a_directory_is_refused},
      {"planted_lock_symlink_is_refused", test_planted_lock_symlink_is_refused},
      {"second_holder_is_refused_until_the_first_is_gone", test_second_holder_is_refused_until_the_first_is_gone},
  };
  // Another user's directory and a read-only mount need root (CI runs as
  // root); elsewhere they are left out, and said so.
  if (root()) {
    tests.push_back({"directory_of_another_user_is_refused", test_directory_of_another_user_is_refused});
    tests.push_back({"read_only_file_system_is_refused", test_read_only_file_system_is_refused});
  } else {
    std::fprintf(stderr, "test_spool_dir: not root: skipping the tests of another user's directory and of a "
                         "read-only mount\n");
  }
  return xmtest::run(argc, argv, {{"spool_dir", tests}});
}
