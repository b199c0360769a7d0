using System.Diagnostics;
using Lab.Interop;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

/// <summary>The futex hand-off RequestDispatch's workers sleep on: no lost wake, no call when nobody sleeps.</summary>
public class SleepFlagTests
{
    static readonly TimeSpan Long = TimeSpan.FromSeconds(20);

    [Fact]
    public void AWakeWithTheFlagDownMakesNoCall()
    {
        var flag = new SleepFlag();
        Assert.False(flag.Wake());
        flag.Announce();
        Assert.True(flag.Retract());  // took it down itself: no wake is coming
        Assert.False(flag.Wake());
        Assert.Equal(0, flag.Wakes);
    }

    [Fact]
    public void TakeDownTellsTheGiverToWakeOnlyWhenTheFlagWasUp()
    {
        var flag = new SleepFlag();
        Assert.False(flag.TakeDown());
        flag.Announce();
        Assert.True(flag.TakeDown());  // the owner sleeps elsewhere (epoll_wait): the caller writes its eventfd
        Assert.False(flag.Up);
        Assert.False(flag.TakeDown()); // a second finisher finds it down: one wake for both
        Assert.False(flag.Retract());  // and the owner knows a wake came
        Assert.Equal(1, flag.Wakes);
    }

    [Fact]
    public void AWakeBetweenAnnounceAndSleepIsNotLost()
    {
        var flag = new SleepFlag();
        flag.Announce();
        Assert.True(flag.Wake());     // the giver came first: the flag is down, one FUTEX_WAKE with nobody on it
        Assert.False(flag.Retract());
        var clock = Stopwatch.StartNew();
        flag.Sleep(Long);             // the kernel sees the word is no longer 1 and refuses to sleep (EAGAIN)
        Assert.True(clock.Elapsed < Long / 2, $"Sleep after a wake took {clock.Elapsed.TotalSeconds:0.0} s: the wake was lost");
        Assert.Equal(1, flag.Wakes);
    }

    [Fact]
    public void ASleeperWaitsInFutexUntilWoken()
    {
        var flag = new SleepFlag();
        int tid = 0;
        TimeSpan slept = default;
        var sleeper = new Thread(() =>
        {
            Volatile.Write(ref tid, unistd.gettid());
            flag.Announce();
            var clock = Stopwatch.StartNew();
            flag.Sleep(Long);
            slept = clock.Elapsed;
        }) { IsBackground = true };
        sleeper.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref tid) != 0, TimeSpan.FromSeconds(10));
        var look = ThreadLook.Until(tid, l => l.State == 'S' && l.SyscallName == "futex", TimeSpan.FromSeconds(10));
        Assert.NotNull(look);         // asleep in the kernel, in futex, not spinning
        Assert.True(flag.Up);
        Assert.True(flag.Wake());
        Assert.True(sleeper.Join(TimeSpan.FromSeconds(10)), "the woken thread did not return from Sleep");
        Assert.True(slept < Long / 2, $"slept {slept.TotalSeconds:0.0} s: the wake did not reach it");
        Assert.False(flag.Up);
    }
}
