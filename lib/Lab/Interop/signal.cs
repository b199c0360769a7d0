// <signal.h> bits Tmds.LibC 0.5.0 lacks.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static class signal
{
    /// <summary>SIGURG: "urgent condition on socket"; ignored by default, unused by the .NET runtime.</summary>
    public const int SIGURG = 23;

    /// <summary>Sends <paramref name="sig"/> to one thread (<paramref name="tid"/>) of the process <paramref name="tgid"/>.</summary>
    [DllImport("libc", SetLastError = true)]
    public static extern int tgkill(int tgid, int tid, int sig);
}
