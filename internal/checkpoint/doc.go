// Package checkpoint dumps a running Linux x86_64 process into an Image and
// restores an Image into a fresh process, in pure Go: ptrace, /proc and
// injected system calls, no CRIU and no cgo. It knows nothing of the
// cluster; the migrate package moves images between nodes.
//
// # Refusal first
//
// Check reads only /proc (status, maps, fd links) and returns a
// *RefusalError listing every reason the process cannot move, like
// openMosix's /proc/PID/cantmove: a tracer already attached, writable
// shared memory (System V shm, named /dev/shm objects, and MAP_SHARED
// anonymous memory, or a /dev/shm object or memfd whose name is gone,
// that another process maps, that is mapped in parts, or whose
// descriptor is still open too: anonshared.go), sockets but
// Unix stream socketpairs whose both ends it holds (kobj_unix.go), FIFOs,
// pipes with an end outside the process (kobj_pipe.go carries the others), device files
// other than /dev/null, /dev/zero, /dev/full, /dev/random and
// /dev/urandom, io_uring, anonymous inodes other than eventfd, epoll,
// timerfd, signalfd and inotify (pidfd...), an epoll watch the restore
// could not register again, open flags of those objects other than
// O_NONBLOCK and O_CLOEXEC, seccomp filters other than the agent's (which
// a restore gives), capabilities other than a
// restore gives (the agent's for root, none for another user), a handled
// SIGTRAP that is pending, inotify events not yet read, a memfd, a
// deleted open file that has another name or that with the others
// exceeds 8 MiB (the rest are carried: kobj_deleted.go), mappings whose
// file was deleted, a POSIX timer (timer_create) on the CPU-time clock of
// another process or of a thread, or any where the kernel cannot give a
// timer its id back (reason Timers; the others are carried: ptimers.go),
// file locks and
// leases (reason Locks, "holds a write lock (POSIX) on /db.sqlite": POSIX,
// OFD, flock, leases and delegations, from the "lock:" lines of
// /proc/PID/fdinfo/N, which list the locks held through each descriptor,
// and the POSIX locks of /proc/locks with the process's pid; see
// locks.go), and whatever a restore could not bring back (reason
// Unrestorable: a working directory, executable, open or mapped file
// whose path no longer leads to the same device and inode, deleted or
// replaced or in the /proc/N of a process that ended; a root directory
// other than ours; a path too long for the restorer; see restorable.go).
// Freeze runs Check before it stops anything and looks again once the
// process is stopped. (MultiThreaded is no longer reported: threads
// move.) The reasons are grouped by kind in the error (FormatReasons).
// CheckWith and FreezeWith take Options: the descriptors listed in
// Options.External (the deputy's stdio) are no refusal reason (see
// below), nor, with Options.RunsOn (a dump after which the process runs
// on), its locks: no image carries them.
//
// # Dump
//
// Freeze attaches with PTRACE_SEIZE and stops the process with
// PTRACE_INTERRUPT: the leader first, then every thread in
// /proc/PID/task, listed again until no new thread shows up (one not yet
// stopped may create another). Dump then saves, for the leader, the general registers
// (PTRACE_GETREGS, fs_base and gs_base included), the extended state
// (PTRACE_GETREGSET NT_X86_XSTATE), the signal mask (PTRACE_GETSIGMASK),
// the rseq registration (PTRACE_GET_RSEQ_CONFIGURATION) and the robust
// list (get_robust_list); from /proc the mappings, the mm fields of stat,
// auxv, exe, cwd, umask, open files (fdinfo flags and pos), the kernel
// objects (kobj.go), the OOM score adjustment, login uid and each
// mapping's advice and locks (smaps VmFlags; attrs.go) and the
// credentials (real, effective and saved uid and gid, supplementary
// groups); every queued signal, with its siginfo, from the thread queue
// and the shared queue (PTRACE_PEEKSIGINFO, with
// PTRACE_PEEKSIGINFO_SHARED for the latter); and, by system calls injected
// into the process, what only it can tell: brk(0), PR_GET_TID_ADDRESS,
// sigaltstack, getitimer for ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF,
// the prctl flags (dumpable, THP disabled, child subreaper,
// no_new_privs), the personality, the membarrier registrations, each
// POSIX timer's time left and period (timer_gettime),
// prlimit64 for the resource limits (asked of the process itself: prlimit
// on another user's process needs CAP_SYS_RESOURCE) and rt_sigaction for
// every caught or ignored signal. A signal that arrives during the
// injected calls is held back; it is sent again by Resume and goes into
// the image as a pending signal with the siginfo it carried
// (PTRACE_GETSIGINFO: a timer's value), queued to the thread that took it
// unless that was the leader. Each injected call is a
// single step, for which the kernel forces a SIGTRAP; a forced signal
// that is blocked has its handler reset, so SIGTRAP is unblocked while
// calls are injected, at the dump and at the restore. An injected call sets the registers (orig_rax
// = -1), points rip at a syscall instruction found in the [vdso], and
// single-steps: the kernel reports the step at syscall exit, so no other
// user instruction runs; a temporary anonymous page, mapped and unmapped
// by injection, receives the answers. The registers are put back after.
//
// Every other thread goes into Image.Threads with its own registers
// (fs_base included), extended state, signal mask, rseq, robust list
// (get_robust_list on its tid), thread-private pending signals, and, by
// calls injected in that thread, its clear-tid address (PR_GET_TID_ADDRESS)
// and alternate stack. Each thread's restart rule is applied at restore.
//
// Memory is copied for every private mapping (anonymous, heap, stack,
// private file mappings), for MAP_SHARED anonymous memory that is the
// process's alone, and for the [vdso] (to compare it at restore):
// process_vm_readv where the mapping is readable, /proc/PID/mem for the
// rest (it reads PROT_NONE and read-only areas). Pages of a file mapping
// past the end of its file read as EIO there: they are left as zeros and
// not written at restore (memread.go). Shared file mappings are not
// copied: their contents are the file's. [vvar] and [vsyscall] come from
// the kernel.
//
// Registers are saved raw. A process frozen inside a system call has
// rax = -ERESTART* and orig_rax = the call; the restart rule is applied at
// restore (see resumeRegs): -ERESTARTSYS, -ERESTARTNOINTR and
// -ERESTARTNOHAND re-run the call, -ERESTART_RESTARTBLOCK (nanosleep,
// whose restart block stays in the old task) returns -EINTR.
//
// After Dump the process is still stopped: Resume lets it go on exactly
// where it was (signals that arrived meanwhile are sent again), Kill ends
// it. An error in Freeze or Dump detaches and leaves the process running
// as it was.
//
// # Dirty tracking and pre-copy
//
// TrackDirty, on a frozen process, creates a userfaultfd inside it by
// injected calls (userfaultfd(2); UFFDIO_API asking for
// UFFD_FEATURE_WP_ASYNC and UFFD_FEATURE_WP_UNPOPULATED;
// UFFDIO_REGISTER in write-protect mode on every private mapping, the
// structures written in the temporary page), takes it into our process
// with pidfd_open and pidfd_getfd, and closes it in the process, so its fd
// table shows nothing (Check still passes). In asynchronous mode the
// kernel resolves write faults itself: the process runs on, the pages it
// writes just lose their protection. Tracker.Dirty reads them with the
// PAGEMAP_SCAN ioctl on /proc/PID/pagemap (PAGE_IS_WRITTEN, with
// PM_SCAN_WP_MATCHING|PM_SCAN_CHECK_WPASYNC, which protects them again
// in the same walk; about 5 ms per GiB here). It also reports, from a scan
// for PAGE_IS_WPALLOWED, the parts of the private mappings that are not
// tracked (mapped after TrackDirty, brk growth, mremap moves, [vdso]) and
// whether /proc/PID/maps changed. Tracking is only ever lost, never
// gained, so an area tracked at the end was tracked all along. The
// kernel's own writes (the rseq cpu_id on each return to user mode) count
// as writes. Closing the Tracker unregisters everything.
//
// Process.PreCopy starts tracking, resumes the process and copies all its
// private memory while it runs (round 0, process_vm_readv or
// /proc/PID/mem); PreCopier.Round copies the pages written since the
// previous round; PreCopier.Finish freezes the process, scans once more
// (written pages, and tracked pages found neither present nor swapped:
// zeroed, or read again for file mappings; a safety net, as this kernel
// already reports the pages MADV_DONTNEED empties as written) and runs the ordinary Dump with the memory taken from the
// pre-copied copy plus the last written and the untracked areas. The
// image is the one Dump would give. The userfaultfd is closed in the
// background after Finish: unprotecting 1 GiB takes tens of milliseconds;
// PreCopier.Close waits for it.
//
// # Restoring for live migration
//
// RestoreOptions.Hold leaves the restored process stopped under ptrace:
// Restored.Release lets it run, Restored.Kill ends it, so that a
// migration can commit or abort after the restore. RestoreOptions.NewGroup
// makes it the leader of a process group of its own (setpgid injected),
// unless it gets a controlling terminal. For a process that runs while it
// is copied, PreCopyWith hands out the Layout and each part of round 0 as
// it is read, Updated and Data what each Round copied again, and
// FinishStats.Fresh what the freeze read; on the other side Stage starts
// the stub and maps the layout, Staged.Write fills it as pages arrive
// (process_vm_writev, or /proc/PID/mem where not writable) and
// Staged.Finish completes the restore with an image whose mappings that
// are the same as the layout's (SameMapping) come without data: the
// others are unmapped or mapped anew, then the process's state as
// Restore sets it. The CPU check is done at Finish.
//
// # Image format
//
// Encode writes, and Decode reads, a stream: the magic "SSICKPT1" and a
// version (5), then length-prefixed sections each followed by its CRC32C:
// core, mappings, files, ext (interval timers, pending signals,
// credentials), threads (every non-leader thread), external (the
// descriptors the caller replaces at restore), cpu (XSAVE features,
// xstate size, cpuinfo flags), objects (eventfd, epoll, timerfd,
// signalfd, inotify, deleted files), attrs (the process's attributes), one pages section per
// mapping with contents, and an end section. An image with neither
// objects nor attributes (never a dump's) is written as version 4. Decode
// still reads version 4, which has no objects and attrs sections (a
// restore then leaves the stub's attributes), version 3,
// which has no external and cpu sections, version 2,
// which has no threads section either (a single-threaded image), and version 1,
// which has no ext section either: such an image restores with no timers,
// no pending signals and the caller's credentials (Image.Creds nil). Decode rejects bad magic, unknown versions, bad
// checksums, sections out of order, truncation anywhere (the end section
// makes a cut at a section boundary visible) and inconsistent mappings,
// with errors wrapping ErrBadMagic, ErrVersion, ErrChecksum, ErrTruncated
// or ErrCorrupt. Page data is read in chunks, so a lying length costs
// nothing before the stream runs out.
//
// # Restore
//
// Restore starts a stub: any static x86_64 executable, run with
// PTRACE_TRACEME, which stops at its exec and never runs its own code (the
// tests build testdata/stub.c; the agent will provide its own, as a hidden
// subcommand), with the replacements of the image's external descriptors
// at their numbers (see below). After the CPU check, by injected system
// calls: map a scratch page at an
// address free in both the stub and the image and move injection there;
// keep the pid (see below); close_range every descriptor but the
// external ones; unmap all of the stub, [vdso] and [vvar]
// included; arch_prctl(ARCH_MAP_VDSO_64) at the image's [vvar] start, after
// checking that this kernel's vDSO has the same layout and bytes (glibc
// caches vDSO pointers); mmap each mapping MAP_FIXED with its protection
// (private and shared file mappings from their files, the stack with
// MAP_GROWSDOWN) and write the saved pages through /proc/PID/mem, which
// ignores protections (zero pages of anonymous memory are skipped);
// PR_SET_MM_MAP for the mm fields, brk, auxv and exe; the files at their
// descriptor numbers with their flags and offsets; the status flags of
// the external descriptors (and a controlling terminal); chdir, umask,
// rt_sigaction, sigaltstack, set_tid_address, set_robust_list, rseq and
// the command name. Resource limits are set with prlimit while the new
// process is still root. Then, with every signal blocked (PTRACE_SETSIGMASK)
// so that nothing interrupts the injected calls: the other threads are
// created by clone3(2) injected in the main thread (CLONE_VM, CLONE_FS,
// CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD, CLONE_SYSVSEM; no
// CLONE_SETTLS, fs_base comes with the registers), traced at once through
// PTRACE_O_TRACECLONE; each gets, by calls injected in it,
// set_tid_address, set_robust_list, sigaltstack and rseq, and its private
// signals are queued with rt_tgsigqueueinfo. The
// pending signals are
// queued again by injected rt_tgsigqueueinfo (thread queue) or
// rt_sigqueueinfo (shared queue), which accept any siginfo since the
// process sends them to itself; the interval timers are armed with
// setitimer; and last the credentials are set with setgroups, setresgid
// and setresuid, in that order. The last injected call unmaps the scratch
// page itself (the step stop comes before rip is used). The signal mask
// is set with PTRACE_SETSIGMASK, the extended state with
// PTRACE_SETREGSET and the registers, restart rule applied, with
// PTRACE_SETREGS, for every thread; PTRACE_DETACH of each thread, the
// leader last, lets the process run. It is a child of the
// caller. If anything fails the stub and what it made are killed
// (PTRACE_O_EXITKILL also kills them if the caller dies).
//
// # Keeping the pid and the thread ids
//
// glibc keeps a thread's id in its thread descriptor (pthread_kill,
// error-checking and robust mutexes use it) and programs keep their pid:
// the restored process should have its old ids. Right after the scratch
// page is mapped, clone3(2) with set_tid {Image.Pid} and CLONE_PARENT is
// injected in the stub: the copy is a child of the caller like the stub
// (with CLONE_PARENT clone3 takes exit_signal 0 and the copy inherits the
// stub's SIGCHLD), traced from its first instruction through
// PTRACE_O_TRACECLONE; the stub is killed and the restore goes on in the
// copy. Each thread is made by clone3 with set_tid {Thread.Tid}. set_tid
// needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) over the pid namespace,
// which the stub has as root; it sets the id in the stub's own (innermost)
// pid namespace, which is the node's. The fallback is documented
// behaviour, not an error: when the pid is taken (EEXIST; a zombie not yet
// reaped holds its pid too) or set_tid is refused, the process goes on in
// the stub with whatever pid it has; a thread whose id is taken gets a new
// one (a refusal for another reason stops the asking for the next
// threads). RestoreWith reports the outcome in Restored: Pid, PidKept,
// PidErr (why not, wrapping the errno), Tids and TidsKept;
// RestoreOptions.AnyPid skips the asking.
//
// # Descriptors held from outside: the deputy's stdio
//
// In the cluster a remote process's fds 0, 1 and 2 are pipes or a pty
// slave held by the agent, which must not keep it from moving. CheckWith
// and FreezeWith take Options{External: []int{0, 1, 2}}: those
// descriptors are no refusal reason whatever they are (pipe, socket,
// terminal, file), and Dump records them in Image.External, not in
// Image.Files: the number, the open flags from fdinfo, the /proc link
// ("pipe:[123]"), whether it is a terminal (a character device of a
// driver in /proc/tty/drivers) and whether it is the process's
// controlling terminal (its device is /proc/PID/stat's tty_nr, or it is
// /dev/tty). RestoreWith takes RestoreOptions.Files, a map from those
// numbers to *os.File (the agent's new pipe ends or pty slave); each must
// be open for what the process did with its descriptor, and every
// external descriptor needs one (Restore, without files, refuses such an
// image). The files are placed at their numbers when the stub is
// started (syscall.ProcAttr.Files), kept open through the restore, and
// given the image's status flags by injected fcntl(F_SETFL) (O_NONBLOCK,
// O_APPEND...: on the open file description, which the caller's copy
// shares: Go's os.Pipe ends are non-blocking, the restored process gets
// them as it had them) and close-on-exec as it was. If the process had a
// controlling terminal and its replacement is a terminal, the restored
// process calls setsid and TIOCSCTTY on it, becoming the leader of a new
// session with that terminal; with no terminal it stays in the caller's
// session. The process group and session ids of the image are not kept.
// What is in flight belongs to the caller: bytes written into a stdin
// pipe but not yet read are lost with the old pipe unless the caller
// keeps a copy of its reading end and drains it once the process is
// frozen or killed, then writes them first into the new pipe; what the
// process wrote into its old stdout pipe is read there to its end
// (TestSuiteGzipStream does exactly this).
//
// # The correctness suite
//
// Besides the engine's own tests, programs run to their end once straight
// and once migrated in the middle, and must leave the same output
// (suite_test.go): appending with O_APPEND through two descriptors,
// seeking and writing and reading back, working through a MAP_SHARED file
// mapping, sha256sum of a 200 MB file (dumped between 10% and 90% of it),
// and gzip -c of a 16 MB stream on pipes. Missing binaries are skipped
// with a message.
//
// # The target's CPU
//
// A process chooses code paths from CPUID once (glibc's string functions
// and lazy-binding trampoline, JIT compilers) and may fault with SIGILL
// long after it moved to a CPU without them; and PTRACE_SETREGSET takes
// an extended state of this kernel's size only. Dump records in
// Image.CPU the XSAVE features the kernel enables (XCR0, which the
// kernel writes into the software bytes of the NT_X86_XSTATE regset), the
// size of that regset and the flags of /proc/cpuinfo; the kernel release
// is in Image.Kernel. Restore reads the same from the stub and refuses,
// before anything runs, with an error wrapping ErrCPUMismatch that names
// what is missing: a user-visible CPU flag the source had (AVX, AVX2,
// AVX-512..., from a fixed list: performance hints such as erms or fsrm
// and kernel-only flags do not count), an XSAVE feature, or another
// xstate size. A CPU with more is fine. A different kernel release is
// not by itself a refusal (the vDSO is compared byte for byte). Images
// before version 4 have no flags: only their xstate is compared.
//
// # Threads
//
// ptrace requests are only accepted from the thread that attached. With
// several threads in the target each is a separate tracee, but all are
// owned by the same locked OS thread. Every
// Process and every Restore owns one goroutine (tracer.go) locked to its
// OS thread for its whole life; all ptrace calls run there, sent over a
// channel. The goroutine never unlocks, so its thread exits with it and
// no other goroutine inherits ptrace state. While a Process is held, its
// stops belong to that thread: the caller must not wait(2) for it. Raw
// calls that pass pointers to the kernel live in ptrace_unsafe.go.
//
// # Not yet handled
//
// pidfd, an open memfd, named /dev/shm objects and mapped deleted files
// other than gone shmem (refused), the overrun count of
// a POSIX timer,
// capabilities other than a restore's and seccomp filters (refused),
// pipes, sockets and terminals other than the external descriptors
// (refused), process group and session ids, the pending events of an
// epoll instance (a restore registers each watch anew: a ready
// edge-triggered watch reports once more, and a one-shot watch that fired
// comes back armed for EPOLLERR and EPOLLHUP, which the kernel adds to
// every registration), and a
// restorer running inside the
// target for many mappings (one injected call costs about 42 µs).
package checkpoint
