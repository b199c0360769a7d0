// <sys/poll.h>: poll(2) with errno recorded.
using System.Runtime.InteropServices;

#pragma warning disable CS8981 // C names on purpose: the interop mirrors the kernel headers

namespace Lab.Interop;

public static unsafe class sys_poll
{
    // Tmds.LibC 0.5.0's poll does not record errno for Marshal.GetLastPInvokeError (measured: a failing poll left it
    // at 0), so an EINTR (a signal, e.g. SIGCHLD when another thread starts a process) looked like "poll failed:
    // errno 0". This import records it.
    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static extern int poll(Tmds.Linux.pollfd* fds, nuint nfds, int timeout);
}
