// <linux/futex.h>: the two futex operations the lab's Futex uses. glibc has no futex() wrapper, so it goes by number.
using System.Runtime.InteropServices;
using Tmds.Linux;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

/// <summary>futex(2): FUTEX_WAIT and FUTEX_WAKE on a private (this process only) 32-bit word.</summary>
public static unsafe class linux_futex
{
    public const int FUTEX_WAIT = 0, FUTEX_WAKE = 1, FUTEX_PRIVATE_FLAG = 128;
    public const int FUTEX_WAIT_PRIVATE = FUTEX_WAIT | FUTEX_PRIVATE_FLAG, FUTEX_WAKE_PRIVATE = FUTEX_WAKE | FUTEX_PRIVATE_FLAG;

    // arch/x86/entry/syscalls/syscall_64.tbl: 202; include/uapi/asm-generic/unistd.h (arm64): 98.
    public static readonly long SYS_futex = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 98 : 202;

    [DllImport("libc", SetLastError = true)]
    static extern long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    /// <summary>Sleeps while <c>*word == expected</c>, at most <paramref name="timeout"/> (relative; null: no limit).</summary>
    public static int futex_wait(int* word, int expected, timespec* timeout) =>
        (int)syscall(SYS_futex, (long)word, FUTEX_WAIT_PRIVATE, expected, (long)timeout, 0, 0);

    /// <summary>Wakes at most <paramref name="count"/> threads sleeping on <paramref name="word"/>; returns how many it woke.</summary>
    public static int futex_wake(int* word, int count) =>
        (int)syscall(SYS_futex, (long)word, FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
}
