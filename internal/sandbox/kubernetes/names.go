package kubernetes

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Labels every object this package makes carries.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedBy       = "aar"
	LabelCampaign   = "aar.dev/campaign"
	LabelResearcher = "aar.dev/researcher"
	LabelSandbox    = "aar.dev/sandbox"
	LabelRole       = "aar.dev/role" // sandbox, worker or campaign
)

// Roles (LabelRole values).
const (
	RoleSandbox  = "sandbox"
	RoleWorker   = "worker"
	RoleCampaign = "campaign"
)

// dnsLabel turns s into a DNS-1123 label fragment: lower-case letters,
// digits and '-', no leading, trailing or repeated '-', at most max bytes;
// "" when nothing is left.
func dnsLabel(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	out := b.String()
	if len(out) > max {
		out = strings.TrimRight(out[:max], "-")
	}
	return out
}

// labelValue turns s into a valid label value (at most 63 bytes of
// letters, digits, '-', '_' and '.', starting and ending alphanumeric).
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return strings.Trim(string(b), "-_.")
}

// shortHash is 8 hex digits of s's SHA-256: names stay unique however
// much of their readable part sanitizing and clipping removed.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// sandboxName names a sandbox's pod, NetworkPolicy and Secret:
// aar-sb-<id>-<hash>, a DNS-1123 label.
func sandboxName(id string) string {
	return join("aar-sb", dnsLabel(id, 45), shortHash(id))
}

// workerName names a worker's pod and Secret: aar-<campaign>-<researcher>-
// <random>, a DNS-1123 label unique in the namespace (two campaigns'
// "alice" differ by the campaign, a relaunched "alice" by the suffix).
func workerName(campaign, researcher string) string {
	r := make([]byte, 3)
	_, _ = rand.Read(r)
	return join("aar", dnsLabel(campaign, 20), dnsLabel(researcher, 24), shortHash(campaign + "/" + researcher)[:4]+hex.EncodeToString(r))
}

// campaignOwnerName names a campaign's owner ConfigMap.
func campaignOwnerName(campaign string) string {
	return join("aar-campaign", dnsLabel(campaign, 40), shortHash(campaign))
}

func join(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "-")
}

// sandboxIDSuffix is the random part `aar researcher` ends a sandbox ID
// with.
var sandboxIDSuffix = regexp.MustCompile(`-[0-9a-f]{8}$`)

// researcherFromID recovers the researcher's name from a sandbox ID made
// as [campaign-]name-xxxxxxxx (see cmd/aar researcher), as a label value.
func researcherFromID(id, campaign string) string {
	s := sandboxIDSuffix.ReplaceAllString(id, "")
	if campaign != "" {
		// aar researcher's --sandbox-prefix: the campaign, lower-cased,
		// other characters as '_', clipped to 24 bytes.
		p := []byte(strings.ToLower(campaign))
		for i, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				p[i] = '_'
			}
		}
		s = strings.TrimPrefix(s, string(p[:min(len(p), 24)])+"-")
	}
	if v := labelValue(s); v != "" {
		return v
	}
	return "researcher"
}

// objectLabels are the labels of one object.
func objectLabels(campaign, researcher, role string) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedBy, LabelRole: role}
	if v := labelValue(campaign); v != "" {
		l[LabelCampaign] = v
	}
	if v := labelValue(researcher); v != "" {
		l[LabelResearcher] = v
	}
	return l
}
