// Makes accept() fail on one thread as it does when a process is out of descriptors, for the
// listeners' EMFILE tests. Lowering RLIMIT_NOFILE instead leaves the sanitizer runtime no
// descriptor either: UBSan's vptr check opens a pipe to test that a vtable is readable
// (IsAccessibleMemoryRange) and reports a valid object as having an "invalid vptr" when it
// cannot, and accept() fails only when no descriptor is free, so no margin serves both.
#pragma once

namespace intermission::testing {

// From now on, accept() and accept4() on the calling thread (and threads it starts) fail with
// EMFILE, through a seccomp filter; other threads and other system calls are untouched. It
// cannot be undone: call it on a thread that ends when the test no longer wants refusals.
// Returns false when the kernel refuses the filter (the caller should fail the test).
bool refuse_accept_on_this_thread();

}  // namespace intermission::testing
