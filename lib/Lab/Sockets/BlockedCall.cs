using System.Runtime.InteropServices;
using Lab.Interop;

namespace Lab.Sockets;

/// <summary>
/// A thread about to wait inside one blocking system call (accept4) that the lab can wake without closing the file
/// descriptor: for a cancellation token, for the cell that made the call when the notebook engine stops it, or for the
/// object's own Dispose. Waking sends the thread SIGURG, whose handler does nothing; the call must have a receive
/// timeout set (SO_RCVTIMEO), because then the kernel never restarts it after a signal, whatever the handler's flags
/// (signal(7)): accept4 returns EINTR and the caller sees <see cref="Woken"/>. The signal is sent again every 10 ms
/// until the thread leaves, so one sent just before it entered the call is not lost.
/// </summary>
internal sealed class BlockedCall : IDisposable
{
    /// <summary>Why the thread was woken.</summary>
    internal enum Reason { None, Cancelled, Stopped, Disposed }

    // SIGURG is ignored by default, so a thread that is not waiting gets nothing from it but an EINTR it retries.
    static readonly Lazy<PosixSignalRegistration> Handler =
        new(() => PosixSignalRegistration.Create((PosixSignal)signal.SIGURG, c => c.Cancel = true));

    readonly int _pid = Environment.ProcessId;
    readonly int _tid = unistd.gettid();
    readonly CancellationTokenRegistration _registration;
    int _reason, _left;

    BlockedCall(CancellationToken ct, string what)
    {
        _ = Handler.Value;
        LabResources.Track(this, what);
        _registration = ct.Register(() => Wake(Reason.Cancelled));
    }

    /// <summary>Registers the calling thread, which is about to block in <paramref name="what"/>.</summary>
    internal static BlockedCall Enter(CancellationToken ct, string what) => new(ct, what);

    /// <summary>Why it was woken (None while nobody asked).</summary>
    internal Reason Woken => (Reason)Volatile.Read(ref _reason);

    /// <summary>Wakes the thread for <paramref name="why"/>; the first reason given is the one kept.</summary>
    internal void Wake(Reason why)
    {
        if (Interlocked.CompareExchange(ref _reason, (int)why, 0) != 0) return;
        // Signalled from a thread of its own: a canceller never waits for the sleeper.
        new Thread(() =>
        {
            for (int i = 0; i < 100 && Volatile.Read(ref _left) == 0; i++)
            {
                signal.tgkill(_pid, _tid, signal.SIGURG);
                Thread.Sleep(10);
            }
        }) { IsBackground = true, Name = "lab wake" }.Start();
    }

    /// <summary>The waiting thread is out of the call: stop signalling it.</summary>
    internal void Leave()
    {
        Volatile.Write(ref _left, 1);
        _registration.Dispose();
        LabResources.Untrack(this);
    }

    /// <summary>The lab stops what a cell started (the engine disposes it): wake the thread.</summary>
    public void Dispose() => Wake(Reason.Stopped);
}
