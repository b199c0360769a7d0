using System.Runtime.InteropServices;
using Lab.Interop;

namespace Lab.Sockets;

/// <summary>
/// Which CPUs a thread may run on (sched_getaffinity / sched_setaffinity, what <c>taskset -p</c> shows and sets, and
/// /proc/self/task/TID/status calls Cpus_allowed_list).
/// </summary>
public static unsafe class CpuAffinity
{
    const int Words = sched.CPU_SETSIZE / 64;

    /// <summary>The CPUs thread <paramref name="tid"/> of this process (0: the calling thread) may run on, in order.</summary>
    public static int[] Of(int tid = 0)
    {
        var mask = stackalloc ulong[Words];
        if (sched.sched_getaffinity(tid, Words * 8, mask) != 0)
            throw new SyscallException("sched_getaffinity", Marshal.GetLastPInvokeError(), $"thread {tid}");
        var cpus = new List<int>();
        for (int i = 0; i < sched.CPU_SETSIZE; i++)
            if ((mask[i / 64] & (1UL << (i % 64))) != 0) cpus.Add(i);
        return [.. cpus];
    }

    /// <summary>Confines the calling thread to <paramref name="cpus"/> (each below 1024).</summary>
    public static void Confine(IReadOnlyCollection<int> cpus)
    {
        if (cpus.Count == 0) throw new ArgumentException("Name at least one CPU.", nameof(cpus));
        var mask = stackalloc ulong[Words];
        foreach (var c in cpus)
        {
            if (c is < 0 or >= sched.CPU_SETSIZE) throw new ArgumentOutOfRangeException(nameof(cpus), c, $"CPU {c} is outside 0..{sched.CPU_SETSIZE - 1}.");
            mask[c / 64] |= 1UL << (c % 64);
        }
        if (sched.sched_setaffinity(0, Words * 8, mask) != 0)
            throw new SyscallException("sched_setaffinity", Marshal.GetLastPInvokeError(), $"CPUs {string.Join(",", cpus)}");
    }
}
