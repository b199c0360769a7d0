namespace Lab.Tests;

[Collection(nameof(LabResourcesTests))]
public class LabResourcesTests
{
    sealed class Thing : IDisposable
    {
        public bool Disposed;
        public Thing() => LabResources.Track(this, "test-thing");
        public void Dispose() { Disposed = true; LabResources.Untrack(this); }
    }

    [Fact]
    public void ACancelledCellDisposesOnlyWhatItStarted()
    {
        Thing earlier;
        using (LabResources.BeginScope()) earlier = new Thing();
        Thing mine;
        using (var scope = LabResources.BeginScope())
        {
            mine = new Thing();
            Assert.Empty(scope.DisposeStarted());
        }
        Assert.True(mine.Disposed);
        Assert.False(earlier.Disposed);
        earlier.Dispose();
        Assert.False(LabResources.Count().ContainsKey("test-thing"));
    }
}
