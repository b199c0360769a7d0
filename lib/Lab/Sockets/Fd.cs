using System.Runtime.InteropServices;
using Lab.Interop;
using Tmds.Linux;

namespace Lab.Sockets;

/// <summary>
/// One file descriptor the lab owns, closed with close(2) exactly once (when disposed, or by the finalizer if a
/// notebook drops it). Raw calls borrow the number through <see cref="Sys.Borrow"/>, which holds a reference so a
/// concurrent Dispose cannot close (and the kernel cannot reuse) the number mid-call.
/// </summary>
public sealed class Fd : SafeHandle
{
    /// <summary>Takes ownership of <paramref name="fd"/> (or not, when <paramref name="ownsHandle"/> is false).</summary>
    public Fd(int fd, bool ownsHandle = true) : base(new IntPtr(-1), ownsHandle) => SetHandle(new IntPtr(fd));

    /// <inheritdoc/>
    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The descriptor number as /proc/self/fd and strace show it (-1 once closed).</summary>
    public int Number => IsClosed ? -1 : (int)handle.ToInt64();

    // Linux releases the descriptor even when close(2) returns EINTR, so close is never retried.
    protected override bool ReleaseHandle() => LibC.close((int)handle.ToInt64()) == 0 || Marshal.GetLastPInvokeError() == errno.EINTR;

    /// <inheritdoc/>
    public override string ToString() => IsClosed ? "fd (closed)" : $"fd {Number}";
}
