// <sched.h>: the CPU affinity calls Tmds.LibC 0.5.0 lacks, with a cpu_set_t of glibc's size (1024 CPUs).
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static unsafe class sched
{
    /// <summary>glibc's cpu_set_t: 1024 bits.</summary>
    public const int CPU_SETSIZE = 1024;

    /// <summary>The CPUs thread <paramref name="tid"/> (0: the caller) may run on; -1 and errno on failure.</summary>
    [DllImport("libc", SetLastError = true)]
    public static extern int sched_getaffinity(int tid, nint cpusetsize, ulong* mask);

    /// <summary>Confines thread <paramref name="tid"/> (0: the caller) to the CPUs in <paramref name="mask"/>.</summary>
    [DllImport("libc", SetLastError = true)]
    public static extern int sched_setaffinity(int tid, nint cpusetsize, ulong* mask);
}
