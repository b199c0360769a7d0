using Lab.Interop;
using Lab.Sockets;

namespace Lab.Hosts;

/// <summary>
/// This process's RLIMIT_NOFILE (the highest fd number + 1 it may open: `ulimit -n`). Lowering it is how a cell
/// provokes EMFILE without opening thousands of sockets; <see cref="Set"/> returns a scope that restores the old limit
/// when disposed, or when the cell that made it is stopped (interrupt, timeout), like a sysctl scope.
/// </summary>
public static unsafe class OpenFileLimit
{
    /// <summary>The soft limit now (what open/accept/socket check), and the hard ceiling.</summary>
    public static (ulong Soft, ulong Hard) Read()
    {
        rlimit r;
        if (sys_resource.getrlimit(sys_resource.RLIMIT_NOFILE, &r) != 0) throw Sys.Fail("getrlimit", "RLIMIT_NOFILE");
        return (r.rlim_cur, r.rlim_max);
    }

    /// <summary>
    /// Sets the soft limit to <paramref name="soft"/> and returns a scope that puts the old one back. The limit is the
    /// whole process's (every thread, the engine's own files too): keep it above the fds already open
    /// (<c>Directory.GetFiles("/proc/self/fd").Length</c>) plus what the cell needs, or the engine itself can fail.
    /// </summary>
    public static OpenFileLimitScope Set(ulong soft)
    {
        var (old, hard) = Read();
        if (soft < 16 || soft > hard)
            throw new ArgumentOutOfRangeException(nameof(soft), soft,
                $"RLIMIT_NOFILE must be from 16 to the hard limit {hard} (`ulimit -Hn`); below 16 the runtime itself cannot open its files.");
        rlimit r = new() { rlim_cur = soft, rlim_max = hard };
        if (sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &r) != 0) throw Sys.Fail("setrlimit", $"RLIMIT_NOFILE = {soft}");
        return new OpenFileLimitScope(old, soft, hard);
    }
}

/// <summary>A lowered (or raised) RLIMIT_NOFILE, restored on Dispose. Safe to dispose twice.</summary>
public sealed unsafe class OpenFileLimitScope : IDisposable
{
    int _disposed;

    internal OpenFileLimitScope(ulong oldSoft, ulong newSoft, ulong hard)
    {
        OldSoft = oldSoft; NewSoft = newSoft; Hard = hard;
        LabResources.Track(this, "OpenFileLimitScope");
    }

    /// <summary>The soft limit before Set, restored on Dispose.</summary>
    public ulong OldSoft { get; }
    public ulong NewSoft { get; }
    public ulong Hard { get; }
    public bool Restored => _disposed != 0;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            rlimit r = new() { rlim_cur = OldSoft, rlim_max = Hard };
            if (sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &r) != 0) throw Sys.Fail("setrlimit", $"RLIMIT_NOFILE back to {OldSoft}");
        }
        finally { LabResources.Untrack(this); }
    }

    public override string ToString() => $"RLIMIT_NOFILE = {NewSoft} (was {OldSoft}{(Restored ? ", restored" : "")})";
}
