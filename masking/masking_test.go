package masking

import (
	"bytes"
	"strings"
	"testing"
)

// Test tokens are random strings in the providers' formats. Prefixes are
// split ("gh" + "p_") so that secret scanners do not flag this file.
var (
	tAWS        = "AK" + "IAUJZDEGXDNCF32EPF"
	tAWS2       = "AS" + "IA3DHODZDOCIS2JHTL"
	tAWSSecret  = "nyVmihA/2O76UMFxFkM/R5Kjp1vRt+1fjORS/6il"
	tGHP        = "gh" + "p_8rESQedUStPKR0CsTy4Qwb8DwkNhFdnXsiVp"
	tGHO        = "gh" + "o_zz63FfkCzJr4i0B3JrTAwR4y9ojfljoQoaF1"
	tGHS        = "gh" + "s_8rESQedUStPKR0CsTy4Qwb8DwkNhFdnXsiVp"
	tGHPat      = "github" + "_pat_11LlqsajAIxNKu8iS2G8NP_RVdD53X83RZJzzzzgEOzdmenCkhvMdgaKjIg8xNbe3nNyjOq9wMxEhh2FDE"
	tGitLab     = "gl" + "pat-9NksnRH9ucAUsdMlHUvT"
	tSlack      = "xo" + "xb-388853933633-8750047439575-9xfogoEmvnEN5N1aE6PwZPf1"
	tHookPath   = "THYM4L1VF/BZ3ZFKKIB/jL5DZPjN0MEQ7wjJJibaZUPg"
	tStripe     = "sk" + "_live_HV7iB3m03nbqnsGpWLuqIA1i"
	tStripeTest = "sk" + "_test_4eC39HqLyjWDarjtT1zdp7dc"
	tStripeRK   = "rk" + "_live_HV7iB3m03nbqnsGpWLuqIA1i"
	tWhsec      = "wh" + "sec_2bB9UoK4tYnzNLeK6kjcbhgN7kwjSbbc"
	tAIza       = "AI" + "za9FHz5r1pY4OjE2jBMptUsGr7CmY-uCu3ZR1"
	tYa29       = "ya" + "29.zTOlUcR64cXQLioDnkHIfxIq2HZt_PlJhx2jIclHkCiHp6bR1IqfEouHgxzN"
	tOpenAI     = "sk" + "-OtHWnsCGRlrwZbqcabUGJmGEp7CgQ0PBQFI14zGtSnovm14T"
	tOpenAIProj = "sk" + "-proj-rZSgqbjG3uhkWKFLf6xuI5aHUQPFeNBTxaQWk8JzFalHlsZfYcMMDktXP_tKsf2rcDkdfrUnW5gcF-Ha6ili8GjHEAD6_Wj9KfzjsQGMrb9h-ImB-LK777pz"
	tAnthropic  = "sk" + "-ant-api03-Nk8cL6j5IXAAjlsHUqJoUD_-Ydua-5ZMs1SWOpQaPRYpzbLGViYXjU2JgJngKtFI3OyV2dZAkg05rK-gqv81RKMGHZEM9-AA"
	tNPM        = "np" + "m_JQzhkPkenG5ZFJoC6vWCBiJmpflvJfupxqZK"
	tSendGrid   = "SG" + ".zc0X0AWIRh_JUqBlIFXZ53.Ncqe28-ajY75FnCttn6kfaqDeMqG3omjMyXHCabM6JO"
	tTwilioSK   = "SK" + "7f770d9106fd287db7f1adbc60926f69"
	tTwilioAC   = "AC" + "67e7893f57fd14c1604d115cea325a65"
	tTwilioTok  = "e19cbae530282bd36cb9d21f6be6abf0"
	tHVS        = "hv" + "s.0FZfWe7ihGyiRUIQfHOJMaidDn87XG3_q_xbMtEPO6UkzYuF0ie9Pu2njHkAm1_5wDr16EpLLJIVGHz4FxFEtKyPiY"
	tVaultS     = "s.qpGHoPZgPDcgaE40o1C6xc4s"
	tDO         = "do" + "p_v1_731662b5e803b61ba4168160adb59261ff2d3c425c8d99d19bdd0b6cc60d5d32"
	tAzure      = "z7rrU0IHGkjLLb1XSrKRUlciN8T7ZZpAFvehG8YsUnHPZPJdbxXMUMS3P0x+YhUTpTzH6ZzXnX/Zx7zk4FsLAQ=="
	tJWT        = "ey" + "JhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiMTIzNDU2Nzg5MCIsICJuYW1lIjogIkpvaG4iLCAiaWF0IjogMTUxNjIzOTAyMn0.-7E56w8ZniqT3Ul4ffqkOkgWrdioyq-KvCiSGuPJ6sG"
	tPEMBody    = "MIIEpAIBAAKCAQEA9WqGeaO+EmVdzlKOp8BWhzoYuOc1gcm+h8C8SripKeJ1Whi\n" +
		"Q/p0FwsbAbWbNrZy05pEaLvzUUQHfEzmMSBKis2HBRyz4/x/VAAWHwzPX3lRHTUG\n" +
		"ZEjTZtRZniCZGPQDwN/uKedZczWFdhM/q4YaiN+Hl28rB1aFeGdRp2LHqHrC8PED\n"
	// Password hashes as pg_authid, /etc/shadow and users tables hold them.
	tSCRAM       = "SCRAM-SHA-256" + "$4096:qkhmYrzvDazH/2xvYC0YWA==$LE8KBN6ukt1/ExCr6A6vAhSL1dKdxwk3s5HxUmpA7Zw=:zZRDC7SDv2mgBYOhUsdcAexiRRgyPBR1SRVKVj1JgbU="
	tPGMD5       = "md5" + "4e6c1d9c1b6d3ab8c41a0ab0e4a0b5e2"
	tBcrypt      = "$2b" + "$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	tSHA512Crypt = "$6" + "$rounds=5000$saltsaltsalt$Xb8dgS5WGKvHGpVnKK8Mn6VeGsSwLQ5QmJgLE9.FDpRgbYwX6tPNkMLqHT1E8UVixVbRrgw3RxAoO5TdK/5Uq1"
	tArgon2      = "$argon2id" + "$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
	tRSA         = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + tPEMBody + "-----END RSA PRIVATE KEY-----"
	tOpenSSH     = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" + tPEMBody + "-----END OPENSSH PRIVATE KEY-----"
)

func mk(kind string) string { return "[MASKED:" + kind + "]" }

type maskCase struct {
	name, in, want string
}

// same marks a look-alike: the input must come out unchanged.
func same(name, in string) maskCase { return maskCase{name, in, in} }

var ruleCases = []maskCase{
	// aws-access-key
	{"aws/akia", "key " + tAWS + " end", "key " + mk("aws-access-key") + " end"},
	{"aws/asia in env", "AWS_ACCESS_KEY_ID=" + tAWS2, "AWS_ACCESS_KEY_ID=" + mk("aws-access-key")},
	{"aws/json", `{"AccessKeyId": "` + tAWS2 + `"}`, `{"AccessKeyId": "` + mk("aws-access-key") + `"}`},
	{"aws/in presigned url", "https://b.s3.amazonaws.com/k?X-Amz-Credential=" + tAWS + "%2F20240101", "https://b.s3.amazonaws.com/k?X-Amz-Credential=" + mk("aws-access-key") + "%2F20240101"},
	same("aws/documentation example", "AKIAIOSFODNN7EXAMPLE"),
	same("aws/upper-case word", "region ASIAPACIFICSOUTHEAST ok"),
	same("aws/too long", tAWS+"Q"),
	same("aws/too short", tAWS[:19]),
	same("aws/no boundary", "X"+tAWS),
	same("aws/not base32", "AKIA0123456789018901"),

	// aws-secret-key
	{"aws-secret/ini", "aws_secret_access_key = " + tAWSSecret, "aws_secret_access_key = " + mk("aws-secret-key")},
	{"aws-secret/env", "AWS_SECRET_ACCESS_KEY=" + tAWSSecret + "\n", "AWS_SECRET_ACCESS_KEY=" + mk("aws-secret-key") + "\n"},
	{"aws-secret/json", `"SecretAccessKey": "` + tAWSSecret + `",`, `"SecretAccessKey": "` + mk("aws-secret-key") + `",`},
	same("aws-secret/documentation example", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),

	// github-token
	{"github/ghp", tGHP, mk("github-token")},
	{"github/gho in json", `{"token":"` + tGHO + `"}`, `{"token":"` + mk("github-token") + `"}`},
	{"github/ghs in git url", "https://x-access-token:" + tGHS + "@github.com/o/r.git", "https://x-access-token:" + mk("github-token") + "@github.com/o/r.git"},
	{"github/fine-grained", "GH_TOKEN=" + tGHPat, "GH_TOKEN=" + mk("github-token")},
	{"github/auth header", "-H 'Authorization: token " + tGHP + "'", "-H 'Authorization: token " + mk("github-token") + "'"},
	same("github/too short", tGHP[:39]),
	same("github/placeholder", "gh"+"p_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	same("github/no boundary", "my"+tGHP),

	// gitlab-token
	{"gitlab/glpat", "PRIVATE-TOKEN: " + tGitLab, "PRIVATE-TOKEN: " + mk("gitlab-token")},
	same("gitlab/short", "gl"+"pat-abc"),

	// slack
	{"slack/bot token", "SLACK_BOT_TOKEN=" + tSlack, "SLACK_BOT_TOKEN=" + mk("slack-token")},
	{"slack/webhook", "curl https://hooks.slack.com/services/" + tHookPath + " -d x", "curl https://hooks.slack.com/services/" + mk("slack-webhook") + " -d x"},
	same("slack/webhook docs", "https://hooks.slack.com/services/"),
	same("slack/word", "xo"+"xb-foo"),

	// stripe
	{"stripe/live", "Stripe.api_key = '" + tStripe + "'", "Stripe.api_key = '" + mk("stripe-key") + "'"},
	{"stripe/test", tStripeTest, mk("stripe-key")},
	{"stripe/restricted", tStripeRK + ".", mk("stripe-key") + "."},
	{"stripe/webhook secret", "STRIPE_WEBHOOK_SECRET=" + tWhsec, "STRIPE_WEBHOOK_SECRET=" + mk("stripe-key")},
	same("stripe/publishable", "pk"+"_live_HV7iB3m03nbqnsGpWLuqIA1i"),
	same("stripe/short", "sk"+"_live_abc"),

	// google
	{"google/api key", "https://maps.googleapis.com/maps/api/js?key=" + tAIza + "&x=1", "https://maps.googleapis.com/maps/api/js?key=" + mk("google-api-key") + "&x=1"},
	{"google/oauth", "access_token: " + tYa29, "access_token: " + mk("google-oauth-token")},
	same("google/short", "AI"+"zaShort"),

	// openai, anthropic
	{"openai/legacy", "OPENAI_API_KEY=" + tOpenAI, "OPENAI_API_KEY=" + mk("openai-api-key")},
	{"openai/project", "key: " + tOpenAIProj + "\n", "key: " + mk("openai-api-key") + "\n"},
	{"anthropic", "x-api-key: " + tAnthropic, "x-api-key: " + mk("anthropic-api-key")},
	same("openai/sk-learn", "pip install scikit-learn sk-learn risk-free disk-1234"),
	same("openai/css class", "class=sk-spinner-rotating-plane-animation"),

	// npm, sendgrid, twilio, vault, digitalocean
	{"npm", "//registry.npmjs.org/:_authToken=" + tNPM, "//registry.npmjs.org/:_authToken=" + mk("npm-token")},
	{"sendgrid", "SENDGRID_API_KEY=" + tSendGrid, "SENDGRID_API_KEY=" + mk("sendgrid-api-key")},
	{"twilio/api key", "sid " + tTwilioSK + " ok", "sid " + mk("twilio-api-key") + " ok"},
	{"twilio/sid and token", "curl -u " + tTwilioAC + ":" + tTwilioTok + " https://api.twilio.com", "curl -u " + tTwilioAC + ":" + mk("twilio-auth-token") + " https://api.twilio.com"},
	{"twilio/auth token env", "TWILIO_AUTH_TOKEN=" + tTwilioTok, "TWILIO_AUTH_TOKEN=" + mk("twilio-auth-token")},
	same("twilio/account sid alone", "account "+tTwilioAC),
	{"vault/hvs", "token  " + tHVS, "token  " + mk("vault-token")},
	{"vault/legacy in env", "VAULT_TOKEN=" + tVaultS, "VAULT_TOKEN=" + mk("vault-token")},
	{"vault/legacy in header", "X-Vault-Token: " + tVaultS, "X-Vault-Token: " + mk("vault-token")},
	same("vault/legacy without context", "file "+tVaultS),
	{"digitalocean", "DIGITALOCEAN_ACCESS_TOKEN=" + tDO, "DIGITALOCEAN_ACCESS_TOKEN=" + mk("digitalocean-token")},

	// azure
	{"azure/storage connection string",
		"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + tAzure + ";EndpointSuffix=core.windows.net",
		"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + mk("azure-key") + ";EndpointSuffix=core.windows.net"},
	{"azure/service bus", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=" + tAzure[:44],
		"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=" + mk("azure-key")},
	{"azure/sas", "https://a.blob.core.windows.net/c?sv=2022-11-02&ss=b&sig=7n1Ww%2BZ0q3dGkJ8xY9pQ%3D&se=1",
		"https://a.blob.core.windows.net/c?sv=2022-11-02&ss=b&sig=" + mk("azure-key") + "&se=1"},

	// jwt
	{"jwt/bare", tJWT, mk("jwt")},
	{"jwt/bearer", "Authorization: Bearer " + tJWT, "Authorization: Bearer " + mk("jwt")},
	{"jwt/end of sentence", "token " + tJWT + ". Next", "token " + mk("jwt") + ". Next"},
	same("jwt/header only", "ey"+"JhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9"),
	same("jwt/header dot word", "ey"+"JhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.json"),

	// private-key
	{"pem/rsa", "cat id_rsa\n" + tRSA + "\n$ ", "cat id_rsa\n" + mk("private-key") + "\n$ "},
	{"pem/openssh crlf", strings.ReplaceAll(tOpenSSH, "\n", "\r\n") + "\r\n", mk("private-key") + "\r\n"},
	{"pem/pkcs8 and encrypted", "-----BEGIN " + "PRIVATE KEY-----\n" + tPEMBody + "-----END PRIVATE KEY-----\n-----BEGIN ENCRYPTED " + "PRIVATE KEY-----\n" + tPEMBody + "-----END ENCRYPTED PRIVATE KEY-----\n",
		mk("private-key") + "\n" + mk("private-key") + "\n"},
	{"pem/rfc1421 headers", "-----BEGIN RSA " + "PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123\n\n" + tPEMBody + "-----END RSA PRIVATE KEY-----", mk("private-key")},
	{"pem/pgp", "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\n\nlQdGBF" + tPEMBody + "=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n", mk("private-key") + "\n"},
	{"pem/gcp service account", `{"type": "service_account", "private_key_id": "1a2b", "private_key": "-----BEGIN ` + `PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nabc+/def\n-----END PRIVATE KEY-----\n", "client_email": "x@p.iam.gserviceaccount.com"}`,
		`{"type": "service_account", "private_key_id": "1a2b", "private_key": "` + mk("private-key") + `\n", "client_email": "x@p.iam.gserviceaccount.com"}`},
	{"pem/no footer fails closed", "key:\n-----BEGIN RSA " + "PRIVATE KEY-----\n" + tPEMBody + "and then the rest of the output", "key:\n" + mk("private-key")},
	same("pem/certificate", "-----BEGIN CERTIFICATE-----\n"+tPEMBody+"-----END CERTIFICATE-----\n"),
	same("pem/public key", "-----BEGIN PUBLIC KEY-----\n"+tPEMBody+"-----END PUBLIC KEY-----\n"),
	same("pem/header in source code", `if strings.HasPrefix(s, "-----BEGIN RSA `+`PRIVATE KEY-----") {`+"\n\treturn rsa\n}\nnext()\n"),
	{"pem/body without header", "$ sed 1d key.pem\n" + tPEMBody + "-----END RSA PRIVATE KEY-----\n", "$ sed 1d key.pem\n" + mk("private-key") + "\n-----END RSA PRIVATE KEY-----\n"},
	same("pem/header in grep output", "pem.go:12: // -----BEGIN OPENSSH "+"PRIVATE KEY----- is the header\nnext line\n"),

	{"pem/base64 in kube secret", "data:\n  tls.key: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBOVdxR2VhTytFbVZkemxLT3A4Qldoem9ZdU9jMWdjbStoOEM4U3JpcEtlSjFXaGkKUS9wMEZ3c2JBYldiTnJaeTA1cEVhTHZ6VVVRSGZFem1NU0JLaXMySEJSeXo0L3gvVkFBV0h3elBYM2xSSFRVRwotLS0tLUVORCBSU0EgUFJJVkFURSBLRVktLS0tLQo=\n",
		"data:\n  tls.key: " + mk("private-key") + "\n"},
	{"pem/kubeconfig client-key-data", "    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBOVdxR2VhTytFbVZkemxLT3A4Qldoem9ZdU9jMWdjbStoOEM4U3JpcEtlSjFXaGkKUS9wMEZ3c2JBYldiTnJaeTA1cEVhTHZ6VVVRSGZFem1NU0JLaXMySEJSeXo0L3gvVkFBV0h3elBYM2xSSFRVRwotLS0tLUVORCBSU0EgUFJJVkFURSBLRVktLS0tLQo=\n",
		"    client-key-data: " + mk("private-key") + "\n"},
	{"pem/base64 wrapped", "$ base64 key.pem\nLS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NBUUVBOVdxR2VhTytF\nbVZkemxLT3A4Qldoem9ZdU9jMWdjbStoOEM4U3JpcEtlSjFXaGkKUS9wMEZ3c2JBYldiTnJaeTA1\ncEVhTHZ6VVVRSGZFem1NU0JLaXMySEJSeXo0L3gvVkFBV0h3elBYM2xSSFRVRwotLS0tLUVORCBS\nU0EgUFJJVkFURSBLRVktLS0tLQo=\n$ ",
		"$ base64 key.pem\n" + mk("private-key") + "\n$ "},
	same("pem/base64 certificate", "tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUVwQUlCQUFLQ0FRRUE5V3FHZWFPK0VtVmR6bEtPcDhCV2h6b1l1T2MxZ2NtCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K\n"),
	same("pem/base64 tag alone", "LS0tLS1CRUdJTi LS0tLS1CRUdJTiBQ"),

	// url-password
	{"url/postgres", "DATABASE_URL=postgres://app:S3cr3tPw@db.internal:5432/app?sslmode=require", "DATABASE_URL=postgres://app:" + mk("url-password") + "@db.internal:5432/app?sslmode=require"},
	{"url/redis empty user", "redis://:hunter2xyz@cache:6379/0", "redis://:" + mk("url-password") + "@cache:6379/0"},
	{"url/mongodb srv", "mongodb+srv://admin:p%40ss%3Aword1@cluster0.mongodb.net/db", "mongodb+srv://admin:" + mk("url-password") + "@cluster0.mongodb.net/db"},
	{"url/at in password", "amqp://guest:g@est123@rabbit:5672/", "amqp://guest:" + mk("url-password") + "@rabbit:5672/"},
	same("url/placeholder word", "postgres://user:password@localhost/db"),
	same("url/placeholder var", "postgres://user:${DB_PASSWORD}@localhost/db"),
	same("url/stars", "postgres://user:****@localhost/db"),
	same("url/no password", "ssh://git@github.com:22/o/r.git https://example.com:8443/x?y=1"),
	same("url/email in path", "https://example.com/u/bob:x@y"),

	// password and other assignments
	{"password/env", "password=hunter2xyz", "password=" + mk("password")},
	{"password/dotenv upper", "DB_PASSWORD=s3cr3t!#\n", "DB_PASSWORD=" + mk("password") + "\n"},
	{"password/export quoted", "export PGPASSWORD='Tr0ub4dor&3'", "export PGPASSWORD='" + mk("password") + "'"},
	{"password/yaml", "db:\n  password: hunter2xyz\n  user: app\n", "db:\n  password: " + mk("password") + "\n  user: app\n"},
	{"password/yaml word", "password: postgres\n", "password: " + mk("password") + "\n"},
	{"password/json", `{"user": "app", "password": "p4ss w0rd"}`, `{"user": "app", "password": "` + mk("password") + `"}`},
	{"password/ini spaced", "passwd = letmein123", "passwd = " + mk("password")},
	{"password/odbc", "Server=db;Uid=sa;Pwd=Str0ngPass;Database=x", "Server=db;Uid=sa;Pwd=" + mk("password") + ";Database=x"},
	{"password/query", "GET /login?user=bob&pass=hunter22&next=/ HTTP/1.1", "GET /login?user=bob&pass=" + mk("password") + "&next=/ HTTP/1.1"},
	{"password/flag", "mysql --password s3cretPw -h db", "mysql --password " + mk("password") + " -h db"},
	{"password/flag equals", "mysql --password=s3cretPw -h db", "mysql --password=" + mk("password") + " -h db"},
	{"password/camel", `dbPassword: "hunter2"`, `dbPassword: "` + mk("password") + `"`},
	{"password/go short decl", `password := "hunter2"`, `password := "` + mk("password") + `"`},
	{"password/ruby hash", `:password => 'hunter2'`, `:password => '` + mk("password") + `'`},
	{"password/escaped json", `"{\"password\":\"hunter2\"}"`, `"{\"password\":\"` + mk("password") + `\"}"`},
	{"secret/client secret", "client_secret=8Q~aBcD3fG4hJ5kL6mN7pQ8rS9tU0vW1xY2z", "client_secret=" + mk("secret")},
	{"secret/django", "SECRET_KEY = 'django-insecure-k3y9x!v2m#q8w7e6r5t4y3u2i1o0p'", "SECRET_KEY = '" + mk("secret") + "'"},
	{"token/generic", "token=abc123def456ghi789", "token=" + mk("token")},
	{"token/uuid under keyword", "HEROKU_API_TOKEN=550e8400-e29b-41d4-a716-446655440000", "HEROKU_API_TOKEN=" + mk("token")},
	{"api-key/generic", "api_key: 9f8e7d6c5b4a39281706", "api_key: " + mk("api-key")},
	{"api-key/header", "X-API-Key: 9f8e7d6c5b4a39281706", "X-API-Key: " + mk("api-key")},
	{"secret/access key", "access_key = 9f8e7d6c5b4a39281706", "access_key = " + mk("secret")},
	{"private-key/assignment", "PRIVATE_KEY=0x4c0883a69102937d6231471b5dbb6204fe512961708279f1d3a1b6e8f5a9e1c2", "PRIVATE_KEY=" + mk("private-key")},
	same("password/empty", "password=\nPASSWORD=\n"),
	same("password/stars", "password=****"),
	same("password/redacted", "password: <redacted>\npassword: [REDACTED]\n"),
	same("password/env reference", "password=${DB_PASSWORD}\npassword: $DB_PASSWORD\n"),
	same("password/template", `password: "{{ .Values.db.password }}"`),
	same("password/changeme", "password: changeme"),
	same("password/placeholder words", "password: null\ntoken: true\nsecret: none\npassword: your_password_here\n"),
	same("password/already masked", "password=[MASKED:password]"),
	same("password/shell pwd", "PWD=/home/user\nOLDPWD=/tmp\n"),
	same("password/path", "password_file=/run/secrets/db\nsecret: /etc/app/secret.key\n"),
	same("password/code attribute", "password = self.password\nsecret := cfg.Secret\ntoken = request.token\n"),
	same("password/code call", `password := os.Getenv("DB_PASSWORD")`+"\ntoken = get_token()\npassword = form['password']\n"),
	same("password/code identifier", "Token: accessToken,\npassword = raw_password\n"),
	same("password/comparison", `if password == "x" || token != "" {`),
	same("password/short", "password: abc\npass: 10\n"),
	same("password/prose", "Enter the password: see the docs.\nthe token is valid\nToken: required\n"),
	same("password/bypass", "bypass=true compass=north"),
	same("password/nsswitch", "passwd:         files systemd\nshadow:         files\n"),
	same("password/help text", "  provided via the --username and --password options instead of via the URL\n  -P|--pass  passphrase   passphrase for the key\n"),
	same("password/path key", `parse "../../../../etc/passwd": invalid URI for request`),
	same("password/prose assignment", "challengePassword = ignored challenge"),
	same("private-key/type names", "def load(private_key: Ed25519PrivateKey, data: bytes):\n    private_key: \"ec.EllipticCurvePrivateKey\"\n"),
	same("auth/oid names", `ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",`),
	same("password/stdin flag", "docker login --password-stdin -u bob"),
	same("token/word", "secretName: my-tls-secret\nexistingSecret: my-db-secret\nmax_tokens=100\ntoken: str\n"),
	same("token/number", "token_ttl=3600 token=3600"),

	{"auth/docker config", `{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNzd29yZA=="}}}`, `{"auths": {"ghcr.io": {"auth": "` + mk("authorization") + `"}}}`},
	{"auth/npmrc", "_auth=dXNlcjpwYXNzd29yZA==", "_auth=" + mk("authorization")},
	same("auth/oauth word", "oauth: enabled\nauth: ldap\n"),
	same("password/go test output", "--- PASS: TestRules/aws/akia (0.00s)\nPASS: TestFoo\nok  \tpkg\t0.1s\n"),

	// authorization
	{"authorization/bearer", "Authorization: Bearer abcdef1234567890xyz", "Authorization: Bearer " + mk("authorization")},
	{"authorization/basic", "authorization: Basic dXNlcjpwYXNzd29yZDE=", "authorization: Basic " + mk("authorization")},
	{"authorization/json", `"Authorization": "Bearer abcdef1234567890xyz"`, `"Authorization": "Bearer ` + mk("authorization") + `"`},
	{"authorization/basic without digits", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic " + mk("authorization")},
	{"authorization/proxy", "Proxy-Authorization: Basic dXNlcjpwYXNzd29yZDE=\r\n", "Proxy-Authorization: Basic " + mk("authorization") + "\r\n"},
	same("authorization/placeholder", "Authorization: Bearer <token>\nAuthorization: Bearer $TOKEN\n"),
	same("authorization/docs", "Set the Authorization header. Authorization:\nAuthorization: Bearer\n"),

	// password-hash
	{"hash/scram in pg_shadow", "usename | passwd\n app | " + tSCRAM + "\n", "usename | passwd\n app | " + mk("password-hash") + "\n"},
	{"hash/scram sha-1", "SCRAM-SHA-1" + "$4096:c2FsdA==$c3RvcmVka2V5c3RvcmVr:c2VydmVya2V5c2VydmVy x", mk("password-hash") + " x"},
	{"hash/pg md5", "rolpassword=" + tPGMD5 + ",", "rolpassword=" + mk("password-hash") + ","},
	{"hash/shadow sha512", "root:" + tSHA512Crypt + ":19700:0:99999:7:::", "root:" + mk("password-hash") + ":19700:0:99999:7:::"},
	{"hash/bcrypt in json", `{"hash": "` + tBcrypt + `"}`, `{"hash": "` + mk("password-hash") + `"}`},
	{"hash/argon2", "stored " + tArgon2 + "\n", "stored " + mk("password-hash") + "\n"},
	{"hash/yescrypt", "alice:$y" + "$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7:19000::", "alice:" + mk("password-hash") + ":19000::"},
	same("hash/shell variables", "echo $1$2 $HOME$PATH $6$x$y cost=$12$"),
	same("hash/md5sum", "d41d8cd98f00b204e9800998ecf8427e  file\nmd5sum md5: d41d8cd98f00b204e9800998ecf8427e\n"),
	same("hash/prompt", "user@host:~$ ls\n$ "),

	// injected values are covered in TestValues.

	// look-alikes that no rule may touch
	same("clean/git sha", "commit 3f786850e387550fdab836ed7e6dc881de23001b\nMerge: 1a2b3c4 5d6e7f8"),
	same("clean/uuid", "request_id=550e8400-e29b-41d4-a716-446655440000 id: 123e4567-e89b-12d3-a456-426614174000"),
	same("clean/sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  file.tar.gz"),
	same("clean/sha512", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
	same("clean/docker digest", "image@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nDigest: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	same("clean/ssh fingerprint", "256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s user@host (ED25519)"),
	same("clean/base64 text", "aGVsbG8gd29ybGQsIHRoaXMgaXMgb3JkaW5hcnkgdGV4dA=="),
	same("clean/versions", "go1.26.8 v2.3.4-rc.1+build.5 node-v20.11.0-linux-x64"),
	same("clean/ls", "-rw-r--r-- 1 root root  4096 Jan  1 12:00 id_rsa.pub\ndrwxr-xr-x 2 root root  4096 Jan  1 12:00 .ssh\n"),
	same("clean/paths", "/var/run/secrets/kubernetes.io/serviceaccount/token ~/.aws/credentials ./secrets/password.txt"),
	same("clean/log", "2024-01-01T12:00:00.123Z INFO server started addr=:8080 pid=4242 user=alice"),
	same("clean/json", `{"id": 42, "name": "build", "tags": ["a", "b"], "ok": true, "ratio": 0.5}`),
	same("clean/prose tokens", "Tokens are issued by the auth service; each token expires after an hour."),
}

// maskBytes runs Bytes with a default masker.
func maskBytes(t *testing.T, in string) string {
	t.Helper()
	return string(Default().Bytes([]byte(in)))
}

func TestRules(t *testing.T) {
	t.Parallel()
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := maskBytes(t, tc.in); got != tc.want {
				t.Errorf("Bytes(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTokenLengths(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		tok  string
		want int
	}{
		"aws": {tAWS, 20}, "aws2": {tAWS2, 20}, "aws secret": {tAWSSecret, 40},
		"ghp": {tGHP, 40}, "github_pat": {tGHPat, 93}, "AIza": {tAIza, 39},
		"npm": {tNPM, 40}, "twilio": {tTwilioSK, 34}, "do": {tDO, 71}, "azure": {tAzure, 88},
	} {
		if len(c.tok) != c.want {
			t.Errorf("%s: test token has %d bytes, want %d", name, len(c.tok), c.want)
		}
	}
}

func TestRulesListed(t *testing.T) {
	t.Parallel()
	rules := Rules()
	seen := map[string]bool{}
	for _, r := range rules {
		if r.ID == "" || r.Description == "" || strings.ContainsAny(r.ID, " \t[]") {
			t.Errorf("bad rule %+v", r)
		}
		if seen[r.ID] {
			t.Errorf("duplicate rule %q", r.ID)
		}
		seen[r.ID] = true
	}
	// Every kind the table expects is a listed rule.
	for _, tc := range ruleCases {
		for _, part := range strings.Split(tc.want, "[MASKED:")[1:] {
			id, _, _ := strings.Cut(part, "]")
			if !seen[id] {
				t.Errorf("%s: kind %q not in Rules()", tc.name, id)
			}
		}
	}
	rules[0].ID = "changed"
	if Rules()[0].ID == "changed" {
		t.Error("Rules returned shared storage")
	}
}

func TestBytesUnchangedReturnsInput(t *testing.T) {
	t.Parallel()
	in := []byte("nothing to see here: just text\n")
	out := Default().Bytes(in)
	if &out[0] != &in[0] {
		t.Error("Bytes copied a buffer with nothing to mask")
	}
	if got := Default().String("password=hunter2xyz"); got != "password="+mk("password") {
		t.Errorf("String: got %q", got)
	}
	if got := Default().Bytes(nil); got != nil {
		t.Errorf("Bytes(nil) = %q", got)
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	m := New(Options{Values: []string{"pg-Inj3cted", "abc", "", "two words here"}})
	cases := []maskCase{
		{"anywhere", "user=app pass:pg-Inj3cted;x", "user=app pass:" + mk("injected-secret") + ";x"},
		{"inside a word", "xxpg-Inj3ctedyy", "xx" + mk("injected-secret") + "yy"},
		{"repeated", "pg-Inj3ctedpg-Inj3cted", mk("injected-secret") + mk("injected-secret")},
		{"with spaces", "say two words here now", "say " + mk("injected-secret") + " now"},
		same("short values ignored", "abc abc"),
		same("prefix only", "pg-Inj3cte"),
	}
	for _, tc := range cases {
		if got := string(m.Bytes([]byte(tc.in))); got != tc.want {
			t.Errorf("%s: got %q want %q", tc.name, got, tc.want)
		}
		for _, chunks := range splits(tc.in) {
			if got := stream(m, chunks); got != tc.want {
				t.Errorf("%s split %q: got %q want %q", tc.name, chunks, got, tc.want)
			}
		}
	}
	d := Default().WithValues("hunter-two-x")
	if got := d.String("a hunter-two-x b"); got != "a "+mk("injected-secret")+" b" {
		t.Errorf("WithValues: got %q", got)
	}
	if got := Default().String("a hunter-two-x b"); got != "a hunter-two-x b" {
		t.Errorf("WithValues changed the original: %q", got)
	}
	if got := m.WithValues("second-val").String("pg-Inj3cted second-val"); got != mk("injected-secret")+" "+mk("injected-secret") {
		t.Errorf("WithValues keeps old values: got %q", got)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	var evs []Event
	m := New(Options{OnMask: func(e Event) { evs = append(evs, e) }, Idle: -1})
	in := "a password=hunter2xyz b\n" + tRSA + "\nc " + tGHP
	var out bytes.Buffer
	w := m.Writer(&out)
	for i := 0; i < len(in); i += 7 {
		w.Write([]byte(in[i:min(i+7, len(in))]))
	}
	w.Close()
	want := []Event{
		{"password", int64(strings.Index(in, "hunter2xyz")), len("hunter2xyz")},
		{"private-key", int64(strings.Index(in, "-----BEGIN")), len(tRSA)},
		{"github-token", int64(strings.Index(in, tGHP)), len(tGHP)},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
	for _, e := range evs {
		if strings.Contains(e.Kind, "hunter") {
			t.Errorf("event carries the value: %+v", e)
		}
	}
}
