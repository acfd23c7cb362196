package masking

import "testing"

var kubeCases = []maskCase{
	{"kube/get secret yaml",
		"apiVersion: v1\ndata:\n  password: cGFzc3dvcmQxMjM=\n  username: YWRtaW4=\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n",
		"apiVersion: v1\ndata:\n  password: " + mk("kubernetes-secret") + "\n  username: " + mk("kubernetes-secret") + "\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n"},
	{"kube/kind before data",
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\ntype: kubernetes.io/tls\ndata:\n  tls.crt: LS0tLS1CRUdJTg==\n  tls.key: LS0tLS1CRUdJTiBQ\n",
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\ntype: kubernetes.io/tls\ndata:\n  tls.crt: " + mk("kubernetes-secret") + "\n  tls.key: " + mk("kubernetes-secret") + "\n"},
	{"kube/list",
		"apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    token: ZXlKaGJHY2k=\n  kind: Secret\n  metadata:\n    name: a\n- apiVersion: v1\n  data:\n    key: dmFsdWU=\n  kind: ConfigMap\nkind: List\n",
		"apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    token: " + mk("kubernetes-secret") + "\n  kind: Secret\n  metadata:\n    name: a\n- apiVersion: v1\n  data:\n    key: dmFsdWU=\n  kind: ConfigMap\nkind: List\n"},
	{"kube/stringData block scalar",
		"kind: Secret\nstringData:\n  config.yaml: |\n    user: app\n    pass: x\n  plain: \"hello\"\nmetadata:\n  name: s\n",
		"kind: Secret\nstringData:\n  config.yaml: |\n    " + mk("kubernetes-secret") + "\n    " + mk("kubernetes-secret") + "\n  plain: \"" + mk("kubernetes-secret") + "\"\nmetadata:\n  name: s\n"},
	{"kube/json",
		"{\n    \"apiVersion\": \"v1\",\n    \"data\": {\n        \"password\": \"cGFzc3dvcmQxMjM=\",\n        \"user\": \"YWRtaW4=\"\n    },\n    \"kind\": \"Secret\",\n    \"metadata\": {\"name\": \"db\"}\n}\n",
		"{\n    \"apiVersion\": \"v1\",\n    \"data\": {\n        \"password\": \"" + mk("kubernetes-secret") + "\",\n        \"user\": \"" + mk("kubernetes-secret") + "\"\n    },\n    \"kind\": \"Secret\",\n    \"metadata\": {\"name\": \"db\"}\n}\n"},
	{"kube/json kind first",
		`{"kind":"Secret","apiVersion":"v1","data":{"a":"YWJj"}}`,
		`{"kind":"Secret","apiVersion":"v1","data":{"a":"` + mk("kubernetes-secret") + `"}}`},
	{"kube/last-applied annotation",
		`"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"data\":{\"password\":\"cGFzc3dvcmQxMjM=\"},\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"}}\n"`,
		`"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"data\":{\"password\":\"` + mk("kubernetes-secret") + `\"},\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"}}\n"`},
	{"kube/pty line endings",
		"apiVersion: v1\r\ndata:\r\n  password: cGFzc3dvcmQxMjM=\r\nkind: Secret\r\n",
		"apiVersion: v1\r\ndata:\r\n  password: " + mk("kubernetes-secret") + "\r\nkind: Secret\r\n"},
	same("kube/configmap yaml", "apiVersion: v1\ndata:\n  app.properties: |\n    level=info\n  mode: fast\nkind: ConfigMap\nmetadata:\n  name: cfg\n"),
	same("kube/configmap json", `{"apiVersion":"v1","data":{"mode":"fast"},"kind":"ConfigMap"}`),
	same("kube/compose volume", "services:\n  db:\n    image: postgres\nvolumes:\n  data:\n    driver: local\n"),
	same("kube/data inline", "data: {mode: fast}\ndata: 12\n"),
	same("kube/helm values", "data:\n  replicas: 3\n  image: nginx\n"),
}

func TestKube(t *testing.T) {
	t.Parallel()
	for _, tc := range kubeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := maskBytes(t, tc.in); got != tc.want {
				t.Errorf("Bytes\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestKubeScrolledAway checks that a data block whose object start has left
// the look-behind window is masked when no kind follows (fail closed).
func TestKubeScrolledAway(t *testing.T) {
	t.Parallel()
	long := "apiVersion: v1\nkind: Secret\nmetadata:\n  annotations:\n"
	for range 100 {
		long += "    note: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	}
	in := long + "data:\n  password: cGFzc3dvcmQxMjM=\n"
	chunks := []string{}
	for i := 0; i < len(in); i += 100 {
		chunks = append(chunks, in[i:min(i+100, len(in))])
	}
	want := long + "data:\n  password: " + mk("kubernetes-secret") + "\n"
	if got := stream(Default(), chunks); got != want {
		t.Fatalf("got %q", got[len(got)-80:])
	}
}
