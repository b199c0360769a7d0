using System.Diagnostics;

namespace Lab.Observe;

/// <summary>
/// A thread of its own making one blocking call that a cell passes (<c>ct => listener.Accept(timeout, ct)</c>), so the
/// cell can <see cref="ParkedCall{T}.Look"/> at it while it waits in the kernel. Dispose cancels the call's token (the
/// lab's blocking calls wake on it) and joins the thread.
/// </summary>
public static class ParkedCall
{
    /// <summary>Starts <paramref name="call"/> on a new thread; returns once the thread runs.</summary>
    public static ParkedCall<T> Start<T>(Func<CancellationToken, T> call) => new(call ?? throw new ArgumentNullException(nameof(call)));
}

/// <summary>One blocking call on a thread of its own (see <see cref="ParkedCall.Start"/>).</summary>
public sealed class ParkedCall<T> : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly Thread _thread;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    int _tid, _disposed;

    internal ParkedCall(Func<CancellationToken, T> call)
    {
        _thread = new Thread(() =>
        {
            Volatile.Write(ref _tid, Lab.Interop.unistd.gettid());
            try { Result = call(_cts.Token); }
            catch (Exception e) { Error = e; }
            WaitedFor = _clock.Elapsed;
        }) { IsBackground = true, Name = "lab-parked" };
        _thread.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref _tid) != 0, TimeSpan.FromSeconds(5));
        LabResources.Track(this, "ParkedCall");
    }

    /// <summary>The thread's Linux id.</summary>
    public int Tid => Volatile.Read(ref _tid);
    /// <summary>What the call returned, once it has.</summary>
    public T? Result { get; private set; }
    /// <summary>What the call threw, if anything.</summary>
    public Exception? Error { get; private set; }
    /// <summary>How long the call took, once it returned.</summary>
    public TimeSpan? WaitedFor { get; private set; }
    /// <summary>True while the thread is still inside the call.</summary>
    public bool Waiting => _thread.IsAlive;

    /// <summary>
    /// Reads the thread from /proc until it sleeps in a wait call with its wait channel named (at most
    /// <paramref name="within"/>, default 2 s: a look taken before it enters the call, or while it is woken, shows it
    /// elsewhere). Returns that look, else the last one read.
    /// </summary>
    public ThreadLook Look(TimeSpan? within = null)
    {
        ThreadLook? asleep = null;
        var look = ThreadLook.Until(Tid, l =>
        {
            if (l.AsleepInWait) asleep = l;
            return (l.AsleepInWait && l.WaitChannel != "0") || !_thread.IsAlive;
        }, within);
        return look is { AsleepInWait: true } ? look : asleep ?? look ?? throw new InvalidOperationException("The parked thread has ended: the call returned (see Result, Error).");
    }

    /// <summary>Waits at most <paramref name="timeout"/> for the call to return; its result (default while it still waits), or what it threw.</summary>
    public T? Join(TimeSpan timeout)
    {
        _thread.Join(timeout);
        if (Error != null) throw Error;
        return Result;
    }

    /// <summary>Cancels the call, joins the thread (at most 2 s) and disposes what the call returned, if it is disposable.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;   // twice is harmless (a clean-up cell, then Keep.One)
        _cts.Cancel();
        _thread.Join(TimeSpan.FromSeconds(2));
        (Result as IDisposable)?.Dispose();
        if (!_thread.IsAlive) _cts.Dispose();   // a call that ignored the token still holds it
        LabResources.Untrack(this);
    }
}
