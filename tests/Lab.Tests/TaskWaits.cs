namespace Lab.Tests;

public static class TaskWaits
{
    /// <summary>
    /// <c>Task.Wait(TimeSpan)</c> for an async test: true once <paramref name="task"/> has completed (its exception, if
    /// any, thrown unwrapped), false if it is still running after <paramref name="limit"/> or the test is cancelled.
    /// Keeps an <c>Assert.True(task.Wait(limit), why)</c> an assertion with its message, without blocking a thread.
    /// </summary>
    public static async Task<bool> CompletesWithin(this Task task, TimeSpan limit)
    {
        if (await Task.WhenAny(task, Task.Delay(limit, TestContext.Current.CancellationToken)) != task) return false;
        await task;
        return true;
    }
}
