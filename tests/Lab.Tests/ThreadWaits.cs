using Lab.Observe;
using Lab.Interop;

namespace Lab.Tests;

/// <summary>
/// Proof that a thread is blocked where a test says, before the test acts on it: its kernel wait channel and system
/// call, read from /proc/self/task/TID by the lab's one thread reading (<see cref="ThreadLook"/>). On 6.18 a blocking accept4
/// sleeps in inet_csk_accept and epoll_wait in do_epoll_wait.
/// </summary>
public static class ThreadWaits
{
    /// <summary>Runs <paramref name="body"/> on a thread of its own; returns its result as a task, and the thread's Linux id.</summary>
    public static (Task<T> Done, int Tid) OnThread<T>(Func<T> body)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        int tid = 0;
        using var started = new ManualResetEventSlim();
        new Thread(() =>
        {
            Volatile.Write(ref tid, unistd.gettid());
            started.Set();
            try { done.SetResult(body()); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true, Name = "lab-test blocked" }.Start();
        Assert.True(started.Wait(TimeSpan.FromSeconds(5)), "the thread did not start within 5 s");
        return (done.Task, Volatile.Read(ref tid));
    }

    /// <summary>Waits (at most 5 s) until thread <paramref name="tid"/> sleeps inside accept4; fails the test otherwise.</summary>
    public static ThreadLook InAccept(int tid) => Until(tid, "accept4", look => look.InAccept);

    /// <summary>Waits (at most 5 s) until thread <paramref name="tid"/> sleeps inside epoll_wait; fails the test otherwise.</summary>
    public static ThreadLook InEpollWait(int tid) =>
        Until(tid, "epoll_wait", look => look.State == 'S' && (look.WaitChannel.Contains("epoll") || look.WaitChannel == "ep_poll"));

    static ThreadLook Until(int tid, string where, Func<ThreadLook, bool> asleepThere)
    {
        var last = ThreadLook.Until(tid, asleepThere, TimeSpan.FromSeconds(5));   // null: the thread ended
        Assert.True(last is not null && asleepThere(last), $"thread {tid} was not seen asleep in {where} within 5 s; last look: {last}");
        return last!;
    }
}
