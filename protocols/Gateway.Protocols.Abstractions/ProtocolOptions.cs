using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.Extensions.Options;

namespace Gateway.Protocols;

/// <summary>
/// A protocol's options type and configuration section. The host resolves the options once
/// before it starts anything, so a bad value stops start-up with one line naming the key; the
/// section is matched by type because a native AOT build keeps no metadata to find it by reflection.
/// </summary>
/// <param name="Type">The options class.</param>
/// <param name="Section">Its configuration section.</param>
/// <param name="Resolve">Resolves (and so validates) the options.</param>
public sealed record ProtocolOptions(Type Type, string Section, Action<IServiceProvider> Resolve)
{
    public static ProtocolOptions For<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(string section)
        where TOptions : class =>
        new(typeof(TOptions), section, static services => _ = ((IOptions<TOptions>)services.GetService(typeof(IOptions<TOptions>))!).Value);

    /// <summary>A listener address must parse; the failure names the key.</summary>
    public static ValidateOptionsResult CheckAddress(string key, string? value) =>
        value is null || IPAddress.TryParse(value, out _)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{key} '{value}' is not an IP address (use 0.0.0.0 for all interfaces, 127.0.0.1 for loopback)");
}
