package masking

// kind identifies a rule. Its value is also the rule's priority when two
// findings start at the same byte: the lower kind wins, so a specific token
// format beats the generic keyword rule that found the same value.
type kind uint8

const (
	kInjected kind = iota
	kPrivateKey
	kAWSAccessKey
	kGitHub
	kGitLab
	kSlackToken
	kSlackWebhook
	kStripe
	kGoogleAPIKey
	kGoogleOAuth
	kAnthropic
	kOpenAI
	kNPM
	kSendGrid
	kTwilioAPIKey
	kTwilioAuthToken
	kVault
	kDigitalOcean
	kJWT
	kPasswordHash
	kAWSSecretKey
	kAzureKey
	kKubeSecret
	kURLPassword
	kAuthorization
	kPassword
	kSecret
	kToken
	kAPIKey
	numKinds
)

// RuleInfo describes one built-in rule. ID is also the kind shown in the
// replacement text "[MASKED:<id>]" and in Event.Kind.
type RuleInfo struct {
	ID, Description string
}

var ruleInfo = [numKinds]RuleInfo{
	kInjected:        {"injected-secret", "exact values given to the masker (injected database passwords, configured secrets)"},
	kPrivateKey:      {"private-key", "PEM and OpenSSH private key blocks, also inside JSON strings; private_key= assignments"},
	kAWSAccessKey:    {"aws-access-key", "AWS access key IDs (AKIA, ASIA, ABIA, ACCA, AGPA, AIDA, AIPA, ANPA, ANVA, APKA, AROA, ASCA, A3T)"},
	kGitHub:          {"github-token", "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)"},
	kGitLab:          {"gitlab-token", "GitLab tokens (glpat-, gldt-, glrt-, glptt-, glft-, glimt-, gloas-, glsoat-, glcbt-, glagent-)"},
	kSlackToken:      {"slack-token", "Slack tokens (xoxa-, xoxb-, xoxp-, xoxo-, xoxs-, xoxr-, xoxe-, xapp-)"},
	kSlackWebhook:    {"slack-webhook", "Slack incoming webhook URLs (hooks.slack.com/services/...)"},
	kStripe:          {"stripe-key", "Stripe secret and restricted keys (sk_live_, rk_live_, sk_test_, rk_test_) and webhook secrets (whsec_)"},
	kGoogleAPIKey:    {"google-api-key", "Google API keys (AIza...)"},
	kGoogleOAuth:     {"google-oauth-token", "Google OAuth access tokens (ya29.)"},
	kAnthropic:       {"anthropic-api-key", "Anthropic API keys (sk-ant-)"},
	kOpenAI:          {"openai-api-key", "OpenAI API keys (sk-, sk-proj-, sk-svcacct-, sk-admin-)"},
	kNPM:             {"npm-token", "npm access tokens (npm_)"},
	kSendGrid:        {"sendgrid-api-key", "SendGrid API keys (SG.x.y)"},
	kTwilioAPIKey:    {"twilio-api-key", "Twilio API key SIDs (SK + 32 hex)"},
	kTwilioAuthToken: {"twilio-auth-token", "Twilio auth tokens after an account SID (AC...:token) or a TWILIO_AUTH_TOKEN assignment"},
	kVault:           {"vault-token", "HashiCorp Vault tokens (hvs., hvb., hvr.; s. after VAULT_TOKEN or X-Vault-Token)"},
	kDigitalOcean:    {"digitalocean-token", "DigitalOcean tokens (dop_v1_, doo_v1_, dor_v1_)"},
	kJWT:             {"jwt", "JSON Web Tokens (eyJ....eyJ....signature)"},
	kPasswordHash:    {"password-hash", "password hashes: PostgreSQL SCRAM verifiers (SCRAM-SHA-256$...) and md5 + 32 hex, crypt(3) hashes ($2b$, $argon2id$, $6$, $y$, ...)"},
	kAWSSecretKey:    {"aws-secret-key", "AWS secret access keys after aws_secret_access_key, AWS_SECRET_ACCESS_KEY or SecretAccessKey"},
	kAzureKey:        {"azure-key", "Azure storage and service bus keys (AccountKey=, SharedAccessKey=) and SAS signatures (sig=)"},
	kKubeSecret:      {"kubernetes-secret", "values under data: and stringData: of a Kubernetes Secret (YAML or JSON)"},
	kURLPassword:     {"url-password", "passwords in URLs (scheme://user:password@host)"},
	kAuthorization:   {"authorization", "credentials in Authorization and Proxy-Authorization headers (Bearer, Basic, Token, ...)"},
	kPassword:        {"password", "values assigned to password, passwd, pwd, pass, passphrase keys (env, .env, YAML, JSON, INI, flags)"},
	kSecret:          {"secret", "values assigned to secret, client_secret, secret_key, access_key keys"},
	kToken:           {"token", "values assigned to token keys (access_token, auth_token, GITHUB_TOKEN, ...)"},
	kAPIKey:          {"api-key", "values assigned to api_key, apikey, api-key keys"},
}

// replacement holds "[MASKED:<id>]" for each kind.
var replacement [numKinds][]byte

func init() {
	for k := range numKinds {
		replacement[k] = []byte("[MASKED:" + ruleInfo[k].ID + "]")
	}
}

// Rules lists the built-in rules in priority order.
func Rules() []RuleInfo {
	out := make([]RuleInfo, numKinds)
	copy(out, ruleInfo[:])
	return out
}

func (k kind) String() string { return ruleInfo[k].ID }
