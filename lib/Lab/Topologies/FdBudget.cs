using Lab.Hosts;

namespace Lab.Topologies;

/// <summary>
/// Descriptors a topology leaves free for the .NET runtime (<see cref="TopologyOptions.FdHeadroom"/>). A .NET process
/// at its RLIMIT_NOFILE cannot start a thread: the new thread's start-up opens /sys and /proc files and a pipe, each
/// fails with EMFILE, and the runtime reports the failed start as OutOfMemoryException. The tiered-compilation
/// worker, which exits after 4 s idle and is started again on demand, is enough: measured here, `lab serve` held at its
/// limit by keep-alive clients died ("Out of memory.") about 4 s after its last accept. Loading an assembly takes two
/// descriptors too. So a topology treats "fewer than the headroom free" as EMFILE, before accept4 says it.
/// </summary>
/// <remarks>
/// Free descriptors are estimated without a syscall per accept: the soft limit (re-read at most every 100 ms, so a
/// limit lowered from outside with prlimit is seen), minus the descriptors that are not this topology's connections
/// (counted in /proc/self/fd at start, when the limit changes, and whenever an accepted descriptor lands inside the
/// headroom), minus the live connections. The kernel hands out the lowest free number, so an accepted descriptor at
/// limit − headroom or above means fewer than headroom are free, whatever the estimate said.
/// </remarks>
internal sealed class FdBudget
{
    const int ReadEveryMs = 100;
    readonly int _headroom;
    int _limit;
    long _limitReadAt;
    int _other;

    public FdBudget(int headroom, long live)
    {
        _headroom = headroom;
        if (headroom == 0) return;
        ReadLimit(Environment.TickCount64);
        Recount(live);
    }

    /// <summary>The soft RLIMIT_NOFILE, at most 100 ms old; when it changed, the descriptors are counted again.</summary>
    int Limit(long live)
    {
        long now = Environment.TickCount64;
        if (now - Volatile.Read(ref _limitReadAt) >= ReadEveryMs)
        {
            int before = Volatile.Read(ref _limit);
            ReadLimit(now);
            if (Volatile.Read(ref _limit) != before) Recount(live);
        }
        return Volatile.Read(ref _limit);
    }

    /// <summary>True when the next check reads the limit again: a limit changed from outside since is seen then.</summary>
    internal bool LimitDueForRead => Environment.TickCount64 - Volatile.Read(ref _limitReadAt) >= ReadEveryMs;

    void ReadLimit(long now)
    {
        var soft = OpenFileLimit.Read().Soft;
        Volatile.Write(ref _limit, soft > int.MaxValue ? int.MaxValue : (int)soft);
        Volatile.Write(ref _limitReadAt, now);
    }

    /// <summary>True when accepting one more connection would leave fewer than the headroom free (as an estimate).</summary>
    public bool Low(long live) => _headroom > 0 && (long)Limit(live) - Volatile.Read(ref _other) - live <= _headroom;

    /// <summary>
    /// After an accept, before the connection counts as live: a descriptor inside the headroom means the estimate was
    /// short; count again (the new connection is one of <paramref name="live"/> + 1).
    /// </summary>
    public void Accepted(int fd, long live)
    {
        if (_headroom > 0 && fd >= Limit(live + 1) - _headroom) Recount(live + 1);
    }

    void Recount(long live)
    {
        int open;
        try { open = Directory.EnumerateFileSystemEntries("/proc/self/fd").Count() - 1; } // less the enumeration's own
        catch (IOException) { return; }                                                   // EMFILE: keep the last count
        catch (UnauthorizedAccessException) { return; }
        Volatile.Write(ref _other, Math.Max(0, open - (int)Math.Min(live, open)));
    }
}
