using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Lab.Observe;

/// <summary>
/// What /proc says about one thread of this process at one moment: its name, scheduler state, the kernel function it
/// sleeps in and the system call it is in (what <c>ps -L -o tid,comm,stat,wchan</c> shows, plus the call).
/// </summary>
/// <param name="Tid">The Linux thread id (gettid; what ps -L and /proc/self/task show).</param>
/// <param name="Name">/proc/self/task/TID/comm: the thread's name as the kernel keeps it (15 characters at most).</param>
/// <param name="State">The state letter from /proc/self/task/TID/stat: R running, S asleep (interruptible), D disk sleep…</param>
/// <param name="WaitChannel">/proc/self/task/TID/wchan: the kernel function it sleeps in ("0" while running, and in the instants it enters or leaves a call).</param>
/// <param name="Syscall">The first field of /proc/self/task/TID/syscall: the number of the system call it is in, by this machine's table (x86-64: 288 accept4, 232 epoll_wait, 202 futex); -1 while it runs or is in none.</param>
public sealed record ThreadLook(int Tid, string Name, char State, string WaitChannel, int Syscall)
{
    /// <summary>The system call's name by this machine's numbers ("accept4"), "none" for -1, "syscall N" for one the lab does not name.</summary>
    public string SyscallName => Syscall < 0 ? "none" : Names.TryGetValue(Syscall, out var n) ? n : $"syscall {Syscall}";

    /// <summary>Asleep inside accept or accept4 in the kernel.</summary>
    public bool InAccept => State == 'S' && (SyscallName is "accept4" or "accept" || WaitChannel.Contains("accept") || WaitChannel.Contains("wait_for_connect"));

    /// <summary>
    /// Asleep (state S) in a call that waits for a socket or an event: accept, accept4, epoll_wait, epoll_pwait(2),
    /// poll, ppoll, select, pselect6, read, recvfrom, recvmsg or io_uring_enter. A futex (a lock, a managed wait, the
    /// runtime suspending threads for a GC) or a sleep does not count.
    /// </summary>
    public bool AsleepInWait => State == 'S' && WaitCalls.Contains(SyscallName);

    /// <summary>
    /// Reads thread <paramref name="tid"/> of this process (or of process <paramref name="process"/>: a peer such as an
    /// nginx worker, whose one thread has the process's id) now; throws <see cref="IOException"/> when it has ended.
    /// </summary>
    public static ThreadLook Of(int tid, int? process = null)
    {
        var dir = process is int pid ? $"/proc/{pid}/task/{tid}" : $"/proc/self/task/{tid}";
        var stat = File.ReadAllText($"{dir}/stat");
        // "TID (comm) S ...": the state follows the last ')' (comm may hold spaces or parentheses).
        char state = stat[stat.LastIndexOf(')') + 2];
        var wchan = File.ReadAllText($"{dir}/wchan").Trim();
        // proc(5): "running" while not blocked, -1 when blocked outside a system call, else the number and its arguments.
        var call = File.ReadAllText($"{dir}/syscall").Split(' ')[0].Trim();
        return new ThreadLook(tid, File.ReadAllText($"{dir}/comm").Trim(), state, wchan, int.TryParse(call, out var nr) ? nr : -1);
    }

    /// <summary>Reads thread <paramref name="tid"/> now, or null when it has ended.</summary>
    public static ThreadLook? TryOf(int tid, int? process = null)
    {
        try { return Of(tid, process); }
        catch (IOException) { return null; }
    }

    /// <summary>
    /// Reads thread <paramref name="tid"/> every millisecond until <paramref name="holds"/> is true of a reading, for at
    /// most <paramref name="within"/> (default 2 s). Returns that reading, or after the time the last one (which does
    /// not hold), or null when the thread has ended.
    /// </summary>
    public static ThreadLook? Until(int tid, Func<ThreadLook, bool> holds, TimeSpan? within = null, int? process = null)
    {
        ArgumentNullException.ThrowIfNull(holds);
        var clock = Stopwatch.StartNew();
        var limit = within ?? TimeSpan.FromSeconds(2);
        while (true)
        {
            var look = TryOf(tid, process);
            if (look is null || holds(look) || clock.Elapsed > limit) return look;
            Thread.Sleep(1);
        }
    }

    static readonly HashSet<string> WaitCalls =
        ["read", "poll", "select", "accept", "accept4", "recvfrom", "recvmsg", "epoll_wait", "epoll_pwait", "epoll_pwait2", "pselect6", "ppoll", "io_uring_enter"];

    // System call numbers from the kernel's tables (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h for arm64).
    static readonly Dictionary<int, string> Names = RuntimeInformation.ProcessArchitecture == Architecture.Arm64
        ? new()
        {
            [63] = "read", [64] = "write", [73] = "ppoll", [72] = "pselect6", [101] = "nanosleep", [115] = "clock_nanosleep",
            [202] = "accept", [203] = "connect", [206] = "sendto", [207] = "recvfrom", [211] = "sendmsg", [212] = "recvmsg",
            [242] = "accept4", [260] = "wait4", [98] = "futex", [21] = "epoll_ctl", [22] = "epoll_pwait", [426] = "io_uring_enter",
            [441] = "epoll_pwait2", [137] = "rt_sigtimedwait", [124] = "sched_yield", [128] = "restart_syscall",
        }
        : new()
        {
            [0] = "read", [1] = "write", [7] = "poll", [23] = "select", [35] = "nanosleep", [230] = "clock_nanosleep",
            [43] = "accept", [42] = "connect", [44] = "sendto", [45] = "recvfrom", [46] = "sendmsg", [47] = "recvmsg",
            [288] = "accept4", [61] = "wait4", [202] = "futex", [232] = "epoll_wait", [233] = "epoll_ctl", [281] = "epoll_pwait",
            [270] = "pselect6", [271] = "ppoll", [426] = "io_uring_enter", [441] = "epoll_pwait2", [128] = "rt_sigtimedwait",
            [24] = "sched_yield", [219] = "restart_syscall",
        };
}
