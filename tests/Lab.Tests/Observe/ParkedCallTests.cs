using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Observe;

public class ParkedCallTests
{
    [Fact]
    public void ABlockingAcceptParksInAccept4UntilAClientConnects()
    {
        using var listener = Listener.Open("127.0.0.1:0", 4);
        using var parked = ParkedCall.Start(ct => listener.Accept(TimeSpan.FromSeconds(10), ct));
        var look = parked.Look();
        Assert.True(look.InAccept && look.AsleepInWait, look.ToString());
        Assert.Equal(('S', "accept4", "lab-parked"), (look.State, look.SyscallName, look.Name));
        Assert.True(parked.Waiting);
        using var client = Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(2));
        Assert.IsType<AcceptResult.Accepted>(parked.Join(TimeSpan.FromSeconds(3)));
        Assert.NotNull(parked.WaitedFor);
    }

    [Fact]
    public void DisposeWakesTheCallThroughItsTokenAndJoinsTheThread()
    {
        using var listener = Listener.Open("127.0.0.1:0", 4);
        var parked = ParkedCall.Start(ct => listener.Accept(null, ct));   // no timeout: only the token ends it
        ThreadWaits.InAccept(parked.Tid);
        parked.Dispose();
        Assert.False(parked.Waiting);
        Assert.IsAssignableFrom<OperationCanceledException>(parked.Error);
        parked.Dispose();   // twice is harmless
    }

    [Fact]
    public void AThreadInAFutexIsAsleepButNotInAWaitCall()
    {
        using var gate = new ManualResetEventSlim();
        using var parked = ParkedCall.Start(ct => gate.Wait(TimeSpan.FromSeconds(10), ct));
        var look = ThreadLook.Until(parked.Tid, l => l.SyscallName == "futex" && l.State == 'S', TimeSpan.FromSeconds(5));
        Assert.True(look is { SyscallName: "futex", State: 'S' }, look?.ToString());
        Assert.False(look!.AsleepInWait);
        Assert.False(look.InAccept);
    }

    [Fact]
    public void AnEndedThreadReadsAsNull()
    {
        var parked = ParkedCall.Start(_ => 42);
        Assert.Equal(42, parked.Join(TimeSpan.FromSeconds(5)));
        parked.Dispose();
        Assert.True(Eventually.Holds(() => ThreadLook.TryOf(parked.Tid) is null), "the thread left /proc/self/task");
        Assert.ThrowsAny<IOException>(() => ThreadLook.Of(parked.Tid));   // FileNotFound or DirectoryNotFound
    }
}
