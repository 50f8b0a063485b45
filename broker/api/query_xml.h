/* query_xml.h - the AWS Query protocol's XML answers, which SQS and SNS speak to awscli and
 * boto3: a growing, escaping buffer and the envelope every answer and error has.
 *
 * Pure (no broker state): the SQS and SNS decoders' fuzz targets link it with them.
 * Threading: none.
 */
#ifndef SL_API_QUERY_XML_H
#define SL_API_QUERY_XML_H

#include <stdbool.h>
#include <stddef.h>

/* Text being written; zero-initialised. After an allocation failure every write is a no-op
 * and `failed` stays set (the end calls then answer NULL). */
struct sl_query_xml {
    char *p;
    size_t len, cap;
    bool failed;
};

/* Appends `s`; with `escape`, & < > " and CR as entities (element text and attribute values). */
void sl_query_xml_put(struct sl_query_xml *x, const char *s, bool escape);
void sl_query_xml_open(struct sl_query_xml *x, const char *name);  /* <name> */
void sl_query_xml_close(struct sl_query_xml *x, const char *name); /* </name> */
/* <name>text (escaped)</name> */
void sl_query_xml_leaf(struct sl_query_xml *x, const char *name, const char *text);
/* <?xml ...?><OpResponse xmlns="ns">[<OpResult>]: what every answer starts with. */
void sl_query_xml_begin(struct sl_query_xml *x, const char *ns, const char *op, bool result);
/* [</OpResult>]<ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></OpResponse>;
 * returns the owned text (free()), or NULL without memory. */
char *sl_query_xml_end(struct sl_query_xml *x, const char *op, bool result, const char *request_id);
/* <ErrorResponse xmlns="ns"><Error><Type>Sender|Receiver</Type><Code/><Message/>[<Detail/>]
 * </Error><RequestId/></ErrorResponse> (SQS sends the empty Detail, SNS does not). Returns
 * owned text or NULL. */
char *sl_query_xml_error(const char *ns, const char *code, bool sender, const char *message,
                         bool detail, const char *request_id);

#endif
