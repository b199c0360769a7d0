// <time.h> bits Tmds.LibC 0.5.0 lacks: it has struct timespec but not clock_nanosleep.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static unsafe class time
{
    public const int CLOCK_MONOTONIC = 1;

    /// <summary>Sleeps on <paramref name="clockid"/> for <paramref name="request"/> (relative unless flags has TIMER_ABSTIME).</summary>
    [DllImport("libc", SetLastError = false)]
    public static extern int clock_nanosleep(int clockid, int flags, Tmds.Linux.timespec* request, Tmds.Linux.timespec* remain);
}
