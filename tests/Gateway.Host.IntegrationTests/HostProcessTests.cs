using System.Text.RegularExpressions;

namespace Gateway.Host.IntegrationTests;

/// <summary>The gateway executable as a user runs it: a child process, configured by arguments.</summary>
[Trait("Category", "Integration")]
public sealed partial class HostProcessTests
{
    private static readonly string GatewayDll = Path.Combine(AppContext.BaseDirectory, "gateway.dll");

    internal static ExternalProcess StartGateway(string workingDirectory, params string[] args) =>
        StartGatewayProcess(["--Mqtt:BindAddress=127.0.0.1", "--Http:BindAddress=127.0.0.1", .. args], workingDirectory);

    /// <summary>
    /// The gateway built next to these tests, or, with <c>GATEWAY_EXECUTABLE</c> set, a published
    /// executable (say a native AOT build) put through the same tests.
    /// </summary>
    internal static ExternalProcess StartGatewayProcess(IEnumerable<string> args, string workingDirectory, IDictionary<string, string>? environment = null)
    {
        var executable = Environment.GetEnvironmentVariable("GATEWAY_EXECUTABLE");
        return string.IsNullOrEmpty(executable)
            ? ExternalProcess.Start("dotnet", [GatewayDll, .. args], workingDirectory, environment)
            : ExternalProcess.Start(executable, args, workingDirectory, environment);
    }

    internal static async Task<int> MqttPortOfAsync(ExternalProcess gateway, TimeSpan? timeout = null)
    {
        await gateway.WaitForOutputAsync("listening: MQTT", timeout);
        return int.Parse(ListeningLine().Match(gateway.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Theory]
    [InlineData("--Mqtt:MaxPacketSize=10", "Mqtt:MaxPacketSize")]
    [InlineData("--Mqtt:Port=70000", "Mqtt:Port")]
    [InlineData("--Mqtt:Port=abc", "Mqtt:Port")]
    [InlineData("--Mqtt:BindAddress=not-an-ip", "Mqtt:BindAddress")]
    [InlineData("--Http:Port=-5", "Http:Port")]
    [InlineData("--Mqtt:ConnectTimeout=forever", "Mqtt:ConnectTimeout")]
    [InlineData("--Mqtt:ConnectTimeout=00:00:00.010", "Mqtt:ConnectTimeout must be between 00:00:00.100 and 00:10:00")]
    [InlineData("--Storage:DataDirectory=/etc/hostname", "Storage:DataDirectory")]
    [InlineData("--Storage:Durability=sometimes", "Storage:Durability")]
    [InlineData("--Storage:MinFreeMegabytes=-1", "Storage:MinFreeMegabytes")]
    [InlineData("--Memory:BudgetMegabytes=-1", "Memory:BudgetMegabytes")]
    [InlineData("--Uplinks:cloud:Endpoints:0=http://nowhere", "Uplinks:cloud:Endpoints:0")]
    [InlineData("--Uplinks:cloud:Protocol=carrier-pigeon", "Uplinks:cloud:Protocol")]
    [InlineData("--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:1 --Uplinks:cloud:MaxPacketSize=10", "Uplinks:cloud:MaxPacketSize must be between 64 and 268435455 bytes")]
    public async Task Bad_configuration_stops_start_up_with_a_message_naming_the_key(string arguments, string key)
    {
        using var directory = new TempDirectory();
        await using var gateway = StartGateway(directory.Path, ["--Mqtt:Port=0", "--Http:Port=0", .. arguments.Split(' ')]);

        var exitCode = await gateway.WaitForExitAsync();

        Assert.Equal(2, exitCode);
        Assert.Contains(key, gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_stops_start_up_naming_the_key_before_any_uplink_connects()
    {
        using var directory = new TempDirectory();
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        using var cloud = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        cloud.Start();
        var takenPort = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var cloudPort = ((System.Net.IPEndPoint)cloud.LocalEndpoint).Port;
        await using var gateway = StartGateway(
            directory.Path,
            $"--Mqtt:Port={takenPort}",
            "--Http:Port=0",
            $"--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:{cloudPort}",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#");

        var exitCode = await gateway.WaitForExitAsync();

        Assert.Equal(1, exitCode); // not 2: systemd tries again, the port may come free
        Assert.Contains($"Mqtt:Port: 127.0.0.1:{takenPort} is already in use", gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", gateway.Output, StringComparison.Ordinal);
        Assert.False(cloud.Pending(), "the uplink connected to the cloud although the gateway never started");
    }

    [Fact]
    public async Task A_second_gateway_on_the_same_data_directory_is_refused_and_the_first_keeps_working()
    {
        using var directory = new TempDirectory();
        await using var first = StartGateway(directory.Path, "--Mqtt:Port=0", "--Http:Port=0");
        var port = await MqttPortOfAsync(first);

        await using (var second = StartGateway(directory.Path, "--Mqtt:Port=0", "--Http:Port=0"))
        {
            Assert.Equal(1, await second.WaitForExitAsync());
            Assert.Contains("Storage:DataDirectory: ", second.Output, StringComparison.Ordinal);
            Assert.Contains($"is in use by another gateway process (pid {first.Id})", second.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", second.Output, StringComparison.Ordinal);
        }

        await using var client = await MqttTestClient.ConnectAsync(port);
        await client.SubscribeAsync("still/up");
        await client.PublishAsync("still/up", "yes");
        Assert.Equal("yes", MQTTnet.MqttApplicationMessageExtensions.ConvertPayloadToString(await client.ReceiveAsync()));
        Assert.DoesNotContain("damaged", first.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Environment_variables_configure_the_gateway()
    {
        using var directory = new TempDirectory();
        await using var gateway = StartGatewayProcess(
            [],
            directory.Path,
            new Dictionary<string, string> { ["GATEWAY_Mqtt__Port"] = "0", ["GATEWAY_Http__Port"] = "0", ["GATEWAY_Mqtt__MaxPacketSize"] = "1" });

        Assert.Equal(2, await gateway.WaitForExitAsync());
        Assert.Contains("Mqtt:MaxPacketSize", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Starts_with_defaults_creates_data_directory_and_stops_cleanly_on_sigint()
    {
        using var directory = new TempDirectory();
        await using var gateway = StartGateway(directory.Path, "--Mqtt:Port=0", "--Http:Port=0");
        var port = await MqttPortOfAsync(gateway);
        Assert.True(Directory.Exists(Path.Combine(directory.Path, "data")));
        Assert.Contains("GC heap limit 256 MB", gateway.Output, StringComparison.Ordinal); // the build's cap, JIT or native AOT

        await using (var client = await MqttTestClient.ConnectAsync(port))
        {
            await client.SubscribeAsync("up");
            await client.PublishAsync("up", "yes");
            Assert.Equal("yes", MQTTnet.MqttApplicationMessageExtensions.ConvertPayloadToString(await client.ReceiveAsync()));

            gateway.Signal(2); // Ctrl+C
            Assert.Equal(0, await gateway.WaitForExitAsync());
        }

        Assert.Contains("Gateway stopping", gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", gateway.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("crit:", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_executable_serves_metrics_for_its_uplinks_memory_and_connections()
    {
        // The shipped build is native AOT: its metrics (the runtime's among them) must work there too.
        using var directory = new TempDirectory();
        using var cloud = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0); // accepts, never answers CONNECT
        cloud.Start();
        await using var gateway = StartGateway(
            directory.Path,
            "--Mqtt:Port=0",
            "--Http:Port=0",
            $"--Uplinks:cloud:Endpoints:0=mqtt://127.0.0.1:{((System.Net.IPEndPoint)cloud.LocalEndpoint).Port}",
            "--Uplinks:cloud:Forward:0:Filter=sensors/#");
        var mqttPort = await MqttPortOfAsync(gateway);
        var httpPort = int.Parse(HttpListeningLine().Match(gateway.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        await using var sensor = await MqttTestClient.ConnectAsync(mqttPort);
        using var http = new HttpClient();

        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{httpPort}/metrics"));

        Assert.Contains("gateway_uplink_state{uplink=\"cloud\"} ", text, StringComparison.Ordinal);
        Assert.Contains("gateway_uplink_backlog_messages{uplink=\"cloud\"} 0\n", text, StringComparison.Ordinal);
        Assert.Matches(@"\ndotnet_process_memory_working_set_bytes [1-9][0-9]*\n", text);
        Assert.Matches(@"\ndotnet_gc_heap_total_allocated_bytes_total [1-9][0-9]*\n", text);
        Assert.Matches($@"\nkestrel_active_connections\{{[^}}]*server_port=""{mqttPort}""[^}}]*\}} 1\n", text);
    }

    [GeneratedRegex(@"listening: MQTT [0-9.]+:(\d+)")]
    private static partial Regex ListeningLine();

    [GeneratedRegex(@"listening: MQTT .*, HTTP [0-9.]+:(\d+)")]
    internal static partial Regex HttpListeningLine();
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("gateway-test-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
